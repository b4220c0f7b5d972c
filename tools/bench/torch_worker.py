#!/usr/bin/python3
"""Times one workload in PyTorch, in its own process, for `make bench`.

    /usr/bin/python3 tools/bench/torch_worker.py KEY THREADS REPS BUDGET_S [--dump DIR]

bench.py starts it with PyTorch's best environment (tcmalloc preloaded,
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, OMP_WAIT_POLICY=PASSIVE,
OPENBLAS_NUM_THREADS=THREADS). It rebuilds the workload's module and inputs
from the fixed seed (workloads.py), sets torch.set_num_threads(THREADS),
and under torch.inference_mode() runs the warm-up and timed calls with the
rules of bench_common.h: warm-up until 2 calls or 1 s (at least 1), then up
to REPS timed calls, stopping once they took BUDGET_S (at least 1). With
--dump it writes the outputs of the last warm-up call to DIR/torchI.out (raw
float32; I counts them in the order of the exported model's outputs). Prints one line of JSON:
times, peak RSS, torch's version and which BLAS and allocator the process
mapped.
"""

import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402

MAX_WARMUP, WARMUP_S = 2, 1.0


def mapped(*needles):
    """The first library mapped into this process whose path contains one of
    needles, or None."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if any(n in path for n in needles):
                return os.path.realpath(path)
    return None


def peak_rss_kb():
    """VmHWM, this process's own peak (ru_maxrss would include the
    orchestrator's: Linux carries it across fork and exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main():
    if len(sys.argv) not in (5, 7) or (len(sys.argv) == 7 and sys.argv[5] != "--dump"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 1
    key, threads, reps, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    dump = sys.argv[6] if len(sys.argv) == 7 else None
    w = next((w for w in workloads.ALL if w.key == key), None)
    if w is None:
        print("torch_worker: unknown workload %s" % key, file=sys.stderr)
        return 1
    torch.set_num_threads(threads)
    module, inputs = w.make()
    warm, times = [], []
    with torch.inference_mode():
        while len(warm) < MAX_WARMUP and (not warm or sum(warm) < 1e3 * WARMUP_S):
            t0 = time.perf_counter()
            outs = workloads.torch_forward(w, module, inputs)
            warm.append(1e3 * (time.perf_counter() - t0))
        if dump:
            for i, t in enumerate(outs):
                t.contiguous().numpy().tofile(os.path.join(dump, "torch%d.out" % i))
        del outs
        while len(times) < reps and (not times or sum(times) < 1e3 * budget):
            t0 = time.perf_counter()
            workloads.torch_forward(w, module, inputs)
            times.append(1e3 * (time.perf_counter() - t0))
    print(json.dumps({"warmup_ms": warm, "times_ms": times,
                      "peak_rss_kb": peak_rss_kb(),
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "blas": mapped("libblas", "libopenblas", "libmkl"), "malloc": mapped("tcmalloc")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
