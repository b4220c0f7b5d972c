"""Writes an f32 safetensors file of small pseudo-random weights
(chunked-scan.test), so that the recurrences stay contractive and the
compiled and interpreted results can be compared over long sequences.

usage: chunk-weights.py OUT SCALE NAME:SHAPE [NAME:SHAPE ...]
  SHAPE is like 256x16; elements are uniform in [-SCALE, SCALE) from a
  fixed linear congruential sequence (the same file every time).
"""
import json
import struct
import sys


def main():
    out, scale, specs = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    header, data, seed = {}, bytearray(), 12345
    for spec in specs:
        name, shape = spec.rsplit(":", 1)
        dims = [int(d) for d in shape.split("x")]
        n = 1
        for d in dims:
            n *= d
        begin = len(data)
        for _ in range(n):
            seed = (seed * 1664525 + 1013904223) % (1 << 32)
            data += struct.pack("<f", ((seed >> 8) / 16777216.0 * 2 - 1) * scale)
        header[name] = {"dtype": "F32", "shape": dims, "data_offsets": [begin, len(data)]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + bytes(data))


if __name__ == "__main__":
    main()
