"""Writes a safetensors file for tests, by hand (as PyTorch-style tools do).

usage: mkst.py OUT NAME:DTYPE:SHAPE [NAME:DTYPE:SHAPE ...]
  DTYPE is F32, F64, F16, BF16, I32, I64 or BOOL; SHAPE is like 8x4 (or
  'scalar'). Element i holds ((i * 7) % 13 - 6) / 8 (integers: i % 5), so
  values are exact in every float format. The header is padded with spaces
  to a multiple of 8 bytes, as the reference writer does.
"""
import json
import struct
import sys

FORMATS = {"F32": "<f", "F64": "<d", "F16": "<e", "I32": "<i", "I64": "<q"}


def element(dtype, i):
    if dtype in ("I32", "I64", "BOOL"):
        return i % 5 if dtype != "BOOL" else i % 2
    return ((i * 7) % 13 - 6) / 8


def encode(dtype, value):
    if dtype == "BOOL":
        return bytes([value])
    if dtype == "BF16":
        return struct.pack("<I", struct.unpack("<I", struct.pack("<f", value))[0])[2:]
    return struct.pack(FORMATS[dtype], value)


def main():
    out, specs = sys.argv[1], sys.argv[2:]
    header, data = {}, b""
    for spec in specs:
        name, dtype, shape_text = spec.split(":")
        shape = [] if shape_text == "scalar" else [int(d) for d in shape_text.split("x")]
        count = 1
        for d in shape:
            count *= d
        blob = b"".join(encode(dtype, element(dtype, i)) for i in range(count))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


main()
