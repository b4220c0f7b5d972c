"""memplan-smaller.py PLANNED UNPLANNED: compares the `seqc build -v` output
of two builds of one model, one with the memplan pass and one without
(memplan-arena.test). Both must name the same programs ("forward", "step")
with a scratch arena each; every planned arena must be strictly smaller.
Prints "PROGRAM: P < U bytes" per program, or the first problem and exits 1."""
import re
import sys


def arenas(path):
    found = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"^(\w+): scratch arena (\d+) bytes$", line.strip())
            if m:
                found[m.group(1)] = int(m.group(2))
    return found


def main():
    planned, unplanned = arenas(sys.argv[1]), arenas(sys.argv[2])
    if not planned or planned.keys() != unplanned.keys():
        print("memplan-smaller: programs differ or none: %s vs %s" % (sorted(planned), sorted(unplanned)))
        return 1
    for name in sorted(planned):
        p, u = planned[name], unplanned[name]
        if not p < u:
            print("memplan-smaller: %s: %d bytes planned, not smaller than %d" % (name, p, u))
            return 1
        print("%s: %d < %d bytes" % (name, p, u))
    return 0


if __name__ == "__main__":
    sys.exit(main())
