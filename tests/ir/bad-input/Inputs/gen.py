"""Writes hostile inputs for seqc: the same faults as .yaml, .sqir and
.safetensors files (empty, garbage, NUL bytes, invalid UTF-8, truncation,
tabs, unclosed collections, 100,000-deep nesting, alias bombs, a 64 MiB
scalar, duplicate keys, and every safetensors header fault).

usage: gen.py DIR
"""
import json
import os
import struct
import sys

ELMAN_YAML = open(os.path.join(os.path.dirname(__file__), "../../../../models/elman.yaml"), "rb").read()
ELMAN_SQIR = open(os.path.join(os.path.dirname(__file__), "../../../../models/elman.sqir"), "rb").read()


def text_faults(good):
    code = good.index(b"\n", good.index(b"graph")) + 1  # past the comments: inside the model
    return {
        "empty": b"",
        "garbage": bytes((i * 151 + 7) % 256 for i in range(4096)),
        "nul": good[:code] + b"\x00" + good[code:],
        "utf8": good[:code] + b"\xff\xfe\xc3\x28" + good[code:],
        "truncated": good[: len(good) // 2],
        "unclosed": b"model: x\ninputs: {x: [f32, \n" if good is ELMAN_YAML else good[: good.rfind(b"}")],
        "deep": b"[" * 100000,
        "scalar64m": b"model: " + b"a" * (64 << 20) + b"\n",
    }


def yaml_only():
    """Faults that only YAML has (a tab is just whitespace in .sqir)."""
    bomb = b"a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 10):
        bomb += b"%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n" % ((97 + i, 97 + i) + (96 + i,) * 9)
    return {
        "aliasbomb": bomb,
        "dupkeys": b"model: x\nmodel: y\n",
        "tabs": ELMAN_YAML.replace(b"\n  ", b"\n\t", 3),
        "deepmap": b"a:\n" + b"".join(b" " * i + b"a:\n" for i in range(1, 3000)),
    }


def safetensors(header, data=b"", raw_len=None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(text) if raw_len is None else raw_len
    return struct.pack("<Q", n) + text + data


def st_faults():
    ok = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    return {
        "empty": b"",
        "short": b"\x01\x02",
        "hugeheader": safetensors(ok, b"\0" * 8, raw_len=1 << 40),
        "header100m": struct.pack("<Q", 100_000_001) + b" " * 16,
        "notjson": safetensors(b"{not json}"),
        "deepjson": safetensors(b"[" * 100000),
        "dupkeys": safetensors(b'{"w": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}, "w": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}'),
        "baddtype": safetensors({"w": {"dtype": "F31", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8),
        "negshape": safetensors({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8),
        "overflow": safetensors({"w": {"dtype": "F32", "shape": [1 << 62, 1 << 62], "data_offsets": [0, 8]}}, b"\0" * 8),
        "wrongsize": safetensors({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
        "gap": safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
        "overlap": safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
        "pastend": safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4),
        "trailing": safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 16),
        "truncated": safetensors(ok, b"\0" * 8)[:20],
    }


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    files = {}
    for name, data in text_faults(ELMAN_YAML).items():
        files[name + ".yaml"] = data
    for name, data in yaml_only().items():
        files[name + ".yaml"] = data
    for name, data in text_faults(ELMAN_SQIR).items():
        files[name + ".sqir"] = data
    for name, data in st_faults().items():
        files[name + ".safetensors"] = data
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


main()
