"""Rows far from zero whose mean is exactly representable (layernorm-offset.sqir).

    layernorm-offset.py PREFIX B D SEED

Writes PREFIX.x, B rows of D f32 around 1e4, and PREFIX.w, B rows of D f64
around 1e6 (raw little-endian): pairs offset + a, offset - a with
a = k * step, k in [1, 512), shuffled, plus the offset itself when D is odd,
so that every row's mean is exactly the offset; the last row is the offset
everywhere (variance 0). The steps (2^-8, 2^-10) are multiples of the ulp
near each offset, so every value is exact, and so is every partial sum of
the interpreter (in double) for D up to 4096.
"""
import random
import struct
import sys

prefix, rows, d, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
for ext, fmt, offset, step in (("x", "f", 1e4, 2.0**-8), ("w", "d", 1e6, 2.0**-10)):
    values = []
    for r in range(rows):
        row = [offset] * (d % 2)
        for _ in range(d // 2):
            a = 0.0 if r == rows - 1 else rng.randrange(1, 512) * step
            row += [offset + a, offset - a]
        rng.shuffle(row)
        values += row
    with open(prefix + "." + ext, "wb") as f:
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))
