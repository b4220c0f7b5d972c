#!/usr/bin/python3
"""make bench: seqc against PyTorch (and OpenBLAS for GEMM), issue 8.

    make bench [BENCH_ARGS='--reps 3 --only B1,G1']
    /usr/bin/python3 tools/bench/bench.py [--reps N] [--rounds R] [--budget S]
        [--threads 1,2] [--only B1,B4,G1] [--build DIR]

For each workload (workloads.py) it builds the torch module from a fixed
seed, exports it with tools/export_torch.py, compiles it with
`seqc build -O2`, checks once that the shared object's outputs match
PyTorch's, then times each engine in its own process: seqc through its
.so (so_timer.c), PyTorch (torch_worker.py) and, for GEMM, OpenBLAS
(gemm_openblas.c). Processes alternate (seqc, torch, [openblas], seqc, ...)
for --rounds rounds at each thread count; each process warms up and makes
up to --reps timed calls within --budget seconds. The machine's FMA peak and
read bandwidths are measured first (probes.c). The Markdown report goes to
stdout and to BUILD/bench/results.md; progress goes to stderr. The method
and the columns are explained in docs/performance.md. Exit status 1 when a
workload could not be built, checked or timed (the report says which).
"""

import argparse
import datetime
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import export_torch  # noqa: E402
import workloads  # noqa: E402

# Debian's libtcmalloc-minimal4, in the multiarch library directory.
TCMALLOC = (glob.glob("/usr/lib/*/libtcmalloc_minimal.so.4") or ["libtcmalloc_minimal.so.4"])[0]
PYTHON = "/usr/bin/python3"
PROCESS_TIMEOUT = 900  # seconds; a naive 2048^3 GEMM takes well under that


class BenchError(Exception):
    """A step that failed: the message says which and why."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Processes and their environments


def run_json(label, cmd, env=None):
    """Runs cmd; returns the JSON object on the last line of its stdout."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError("%s: timed out after %d s" % (label, PROCESS_TIMEOUT))
    except OSError as e:
        raise BenchError("%s: cannot run %s: %s (`make bench` builds it)" % (label, cmd[0], e.strerror))
    if p.returncode != 0:
        err = (p.stderr.strip() or p.stdout.strip() or "no message").splitlines()
        raise BenchError("%s: exit %d: %s" % (label, p.returncode, " / ".join(err[-3:])))
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError("%s: no JSON result on stdout: %r" % (label, p.stdout[-200:]))


def baseline_env(threads, core):
    """The environment of the OpenBLAS and PyTorch processes: the
    environment's OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (which may force an
    older kernel) removed; OPENBLAS_CORETYPE set only to the core type the
    bench found fastest (choose_openblas_core; None leaves the choice to
    OpenBLAS); the thread count fixed. Only the baseline processes get this:
    seqc's processes, tests and CI keep the environment as it is."""
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    if core:
        env["OPENBLAS_CORETYPE"] = core
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    return env


def torch_env(threads, core):
    """PyTorch at its best (issue 8): tcmalloc preloaded, OpenBLAS (Debian's
    PyTorch calls the system BLAS) on its best kernel and the same thread
    count, OpenMP threads that sleep rather than spin between parallel
    regions."""
    env = baseline_env(threads, core)
    env["LD_PRELOAD"] = TCMALLOC + (" " + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def openblas_cores(flags):
    """OPENBLAS_CORETYPE values worth trying on a CPU with these flags; None
    is OpenBLAS's own detection."""
    if "avx512f" in flags:
        cores = (["Cooperlake"] if "avx512_bf16" in flags else []) + ["SkylakeX"]
    elif "avx2" in flags:
        cores = ["Haswell", "Zen"]
    else:
        cores = []
    return [None] + cores


def choose_openblas_core(bins, flags, rounds=3):
    """The OpenBLAS core type of the fastest 1024^3 sgemm on one thread.

    OpenBLAS's detection knows only the CPU models of its release: on a
    newer one it falls back to an old kernel (0.3.21 runs Prescott's SSE3
    kernel on a family 6 model 207 Xeon with AVX-512, 8x below its
    Cooperlake kernel), which would make every baseline meaningless. The
    candidates alternate for `rounds` processes each; each is judged by its
    fastest call (the least disturbed by other work). Returns (core to set
    or None, OpenBLAS's name for it, [(candidate, name, ms)])."""
    best = {}
    for _ in range(rounds):
        for core in openblas_cores(flags):
            r = run_json("openblas core %s" % (core or "(detected)"),
                         [os.path.join(bins, "gemm_openblas"), "1024", "1", "5", "1"], env=baseline_env(1, core))
            ms = min(r["times_ms"])
            if core not in best or ms < best[core][1]:
                best[core] = (r["corename"], ms)
    tried = [(core, name, ms) for core, (name, ms) in best.items()]
    core, name, _ = min(tried, key=lambda c: c[2])
    return core, name, tried


# ---------------------------------------------------------------------------
# The machine


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def size_bytes(text):
    """'48K', '2048K', '300M' (sysfs cache sizes) in bytes."""
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * mult[text[-1]] if text and text[-1] in mult else int(text or 0)


def machine():
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "flags": set()}
    for line in read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            info["cpu"] = value.strip()
        elif key.strip() in ("flags", "Features"):
            info["flags"] = set(value.split())
    caches = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    for index in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        d = os.path.join(base, index)
        if read(os.path.join(d, "type")) in ("Data", "Unified"):
            caches["L%s" % read(os.path.join(d, "level"))] = size_bytes(read(os.path.join(d, "size")))
    info["caches"] = caches
    info["load"] = read("/proc/loadavg").split()[:3]
    return info


def git_version():
    """The commit being measured, and whether tracked files differ from it.
    Read-only: GIT_OPTIONAL_LOCKS=0 keeps `git status` from rewriting the
    index while others commit in the same checkout."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, env=env, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, env=env, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (head or "unknown") + (" with uncommitted changes" if dirty else "")


def bandwidth_levels(caches):
    """(name, bytes per thread, capacity per thread used to classify a
    workload) of each level the bandwidth probe measures: half of L1 and of
    L2 (private per core), a block well beyond L2 that the last-level cache
    still holds, and a block far beyond it."""
    l1, l2, l3 = caches.get("L1", 32 << 10), caches.get("L2", 1 << 20), caches.get("L3", 0)
    llc = 4 * l2
    levels = [("L1", l1 // 2, l1), ("L2", l2 // 2, l2)]
    if l3 >= 4 * llc:
        levels.append(("LLC", llc, llc))
    # Memory: twice the L3 so that it cannot hold the block, within [256 MiB,
    # 1 GiB] per thread (first touch costs seconds per GiB here).
    levels.append(("memory", min(max(256 << 20, 2 * l3), 1 << 30), None))
    return levels


def probe(bins, threads, caches):
    """FMA peak (GFLOP/s) and read bandwidth (GB/s) of each level, per thread count."""
    ts = [str(t) for t in threads]
    peak = run_json("probes fma", [os.path.join(bins, "probes"), "fma"] + ts)
    limits = {"isa": peak["isa"], "lanes": peak["lanes"], "peak": {int(k): v for k, v in peak["gflops"].items()},
              "bw": []}
    for name, block, capacity in bandwidth_levels(caches):
        r = run_json("probes bw", [os.path.join(bins, "probes"), "bw", str(block)] + ts)
        limits["bw"].append((name, block, capacity, {int(k): v for k, v in r["gbps"].items()}))
    return limits


# ---------------------------------------------------------------------------
# One workload: export, build, check


class Prepared:
    def __init__(self, w, work):
        self.w = w
        self.dir = os.path.join(work, w.key)
        self.yaml = os.path.join(self.dir, w.name + ".yaml")
        self.weights = os.path.join(self.dir, w.name + ".safetensors")
        self.so = os.path.join(self.dir, w.name + ".so")
        self.outputs = []
        self.weight_bytes = 0
        self.build_s = self.so_bytes = None
        self.check = None   # the comparison's summary, once done
        self.error = None   # why the workload was not (fully) timed
        self.runs = {}      # (engine, threads): [result JSON of each process]


def prepare(w, work, seqc):
    """Exports the module (or writes the GEMM model), writes the inputs and
    builds the .so; returns a Prepared."""
    p = Prepared(w, work)
    os.makedirs(p.dir, exist_ok=True)
    module, inputs = w.make()
    if module is not None:
        try:
            p.outputs = export_torch.export(module, w.name, w.types, os.path.join(p.dir, w.name), w.batch_first)
        except export_torch.ExportError as e:
            raise BenchError("export_torch: %s" % e)
        p.weight_bytes = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    else:
        with open(p.yaml, "w") as f:
            f.write(workloads.gemm_yaml(w.name))
        export_torch.write_safetensors(p.weights, {}, {"generator": "tools/bench/bench.py"})
        p.outputs = ["c"]
    for name, t in inputs:
        t.contiguous().numpy().tofile(os.path.join(p.dir, name + ".bin"))
    t0 = time.perf_counter()
    r = subprocess.run([seqc, "build", p.yaml, "-O2", "-o", p.so], capture_output=True, text=True,
                       timeout=PROCESS_TIMEOUT)
    p.build_s = time.perf_counter() - t0
    if r.returncode != 0:
        msg = (r.stderr.strip() or r.stdout.strip() or "exit status %d" % r.returncode).splitlines()
        raise BenchError("seqc build: %s" % " / ".join(msg[:3]))
    p.so_bytes = os.path.getsize(p.so)
    return p


def seqc_cmd(p, bins, threads, reps, budget, dump=False):
    return ([os.path.join(bins, "so_timer"), p.so, p.weights, p.dir, str(threads), str(reps), str(budget)]
            + (["--dump"] if dump else []) + ["%s=%d" % kv for kv in sorted(p.w.dims.items())])


def torch_cmd(p, threads, reps, budget, dump=False):
    return ([PYTHON, os.path.join(HERE, "torch_worker.py"), p.w.key, str(threads), str(reps), str(budget)]
            + (["--dump", p.dir] if dump else []))


def openblas_cmd(p, bins, threads, reps, budget):
    return [os.path.join(bins, "gemm_openblas"), str(p.w.dims["M"]), str(threads), str(reps), str(budget)]


def read_f32(path):
    with open(path, "rb") as f:
        data = f.read()
    return torch.frombuffer(bytearray(data), dtype=torch.float32) if data else torch.zeros(0)


def check(p, bins, args):
    """Runs the .so and PyTorch once (a warm-up call each, dumped) and
    compares every output: |seqc - torch| <= tol + tol * |torch|."""
    for i, name in enumerate(p.outputs):
        for stale in (name + ".out", "torch%d.out" % i):
            if os.path.exists(os.path.join(p.dir, stale)):
                os.remove(os.path.join(p.dir, stale))
    run_json("seqc check run", seqc_cmd(p, bins, 1, 0, 0, dump=True))
    run_json("torch check run", torch_cmd(p, 1, 0, 0, dump=True), env=torch_env(1, args.core))
    worst = 0.0
    for i, name in enumerate(p.outputs):
        got, want = read_f32(os.path.join(p.dir, name + ".out")), read_f32(os.path.join(p.dir, "torch%d.out" % i))
        if got.numel() != want.numel():
            raise BenchError("check: output %s has %d elements, PyTorch's %d" % (name, got.numel(), want.numel()))
        err = (got - want).abs()
        over = err > args.tol + args.tol * want.abs()
        over |= torch.isnan(got) != torch.isnan(want)
        if over.any():
            k = int(over.nonzero()[0])
            raise BenchError("check: output %s differs from PyTorch's at %d elements (first [%d]: %.7g vs %.7g)"
                             % (name, int(over.sum()), k, float(got[k]), float(want[k])))
        if err.numel():
            worst = max(worst, float(err.nan_to_num(0.0).max()))
    p.check = "max abs err %.2g" % worst


def time_rounds(p, bins, args, threads):
    engines = ["seqc", "torch"] + (["openblas"] if p.w.key.startswith("G1") else [])
    for r in range(args.rounds):
        line = []
        for e in engines:
            if e == "seqc":
                res = run_json("seqc", seqc_cmd(p, bins, threads, args.reps, args.budget))
            elif e == "torch":
                res = run_json("torch", torch_cmd(p, threads, args.reps, args.budget),
                               env=torch_env(threads, args.core))
            else:
                res = run_json("openblas", openblas_cmd(p, bins, threads, args.reps, args.budget),
                               env=baseline_env(threads, args.core))
            p.runs.setdefault((e, threads), []).append(res)
            line.append("%s %.2f ms" % (e, statistics.median(res["times_ms"])))
        log("  %s, %d thread%s, round %d/%d: %s" % (p.w.key, threads, "s" if threads > 1 else "", r + 1,
                                                    args.rounds, ", ".join(line)))


# ---------------------------------------------------------------------------
# The report


def fmt_ms(x):
    return "%.3g" % x if x < 100 else "%.0f" % x


def fmt_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return "%.3g %s" % (n / size, unit)
    return "%d B" % n


def engine_stats(p, engine, threads):
    runs = p.runs.get((engine, threads))
    if not runs:
        return None
    times = [t for r in runs for t in r["times_ms"]]
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "n": len(times),
            "procs": len(runs), "rss": max(r["peak_rss_kb"] for r in runs) * 1024}


def level_for(nbytes, threads, limits):
    """The fastest measured level whose capacity (per core, times the
    threads sharing the work) holds nbytes, and its bandwidth at threads."""
    for name, _, capacity, gbps in limits["bw"]:
        if capacity is None or nbytes <= capacity * threads:
            return name, gbps[threads]
    return None, None


def roofline(p, limits, threads_list):
    """'B1: 1 MiB recurrent weights per step x 1024 steps: 1 thr: fit L2:
    >= X us/step at L2 bw ..., >= Y ms per forward; compute >= Z ms at FMA
    peak; bound compute; seqc W ms, N% of the bound's speed' for every
    thread count. The bound is the larger of the two times."""
    w = p.w
    head = "- **%s**: %s %s %s" % (w.key, fmt_bytes(w.step_bytes), w.what,
                                   "per step x %d steps" % w.steps if w.steps > 1 else "per forward")
    parts = []
    for t in threads_list:
        level, gbps = level_for(w.step_bytes, t, limits)
        step_ms = w.step_bytes / (gbps * 1e9) * 1e3
        if w.steps > 1:
            # The input weights count once per forward, from wherever they fit.
            bw_ms = step_ms * w.steps + w.once_bytes / (level_for(w.once_bytes, t, limits)[1] * 1e9) * 1e3
            text = ">= %s us/step at %s bw %.0f GB/s, >= %s ms per forward" % (
                fmt_ms(1e3 * step_ms), level, gbps, fmt_ms(bw_ms))
        else:
            bw_ms = step_ms
            text = ">= %s ms at %s bw %.0f GB/s" % (fmt_ms(step_ms), level, gbps)
        compute_ms = w.flops / (limits["peak"][t] * 1e9) * 1e3
        bound_ms = max(compute_ms, bw_ms)
        text = "%d thr: fit %s: %s; compute >= %s ms at FMA peak; bound %s" % (
            t, level, text, fmt_ms(compute_ms), "compute" if bound_ms == compute_ms else "bandwidth")
        s = engine_stats(p, "seqc", t)
        if s:
            text += "; seqc %s ms" % fmt_ms(s["median"])
            if w.steps > 1:
                text += " = %s us/step" % fmt_ms(1e3 * s["median"] / w.steps)
            text += ", %.3g%% of the bound's speed" % (100 * bound_ms / s["median"])
        parts.append(text)
    return head + ": " + "; ".join(parts)


def results_rows(p, limits, threads_list):
    rows = []
    w = p.w
    for t in threads_list:
        base = engine_stats(p, "seqc", t)
        for e in ("seqc", "torch", "openblas"):
            s = engine_stats(p, e, t)
            if not s:
                continue
            ratio = ""
            if base and e != "seqc":
                r = s["median"] / base["median"]
                ratio = ("%.3g (seqc at %.3g%% of OpenBLAS)" % (r, 100 * r) if e == "openblas"
                         else "%.3g" % r)
            gflops = w.flops / (s["median"] * 1e-3) / 1e9
            weights = p.weight_bytes if e != "openblas" else 0
            rows.append("| %s | %d | %s | %s | %s–%s | %d / %d | %s | %.3g | %.1f%% | %.0f | %.0f |" % (
                w.key, t, {"seqc": "seqc", "torch": "PyTorch", "openblas": "OpenBLAS"}[e], fmt_ms(s["median"]),
                fmt_ms(s["min"]), fmt_ms(s["max"]), s["procs"], s["n"], ratio, gflops,
                100 * gflops / limits["peak"][t], s["rss"] / 2**20, (s["rss"] - weights) / 2**20))
    return rows


def report(args, info, limits, prepared, torch_info, corename, tried):
    threads = args.threads
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    caches = ", ".join("%s %s" % (k, fmt_bytes(v)) for k, v in sorted(info["caches"].items()))
    out = ["# seqc benchmark, %s" % now, "",
           "- machine: %s, %d cores, %s (%d fp32 lanes); caches per core %s (L3 shared)" % (
               info["cpu"], info["cores"], limits["isa"], limits["lanes"], caches),
           "- seqc: %s, `seqc build -O2`, threads from the ctx option (`seqrt_options.num_threads`)" % git_version(),
           "- PyTorch %s, BLAS %s, malloc %s" % (torch_info.get("torch", "?"), torch_info.get("blas") or "?",
                                                  torch_info.get("malloc") or "glibc (tcmalloc NOT loaded)"),
           "- OpenBLAS core: %s (%s; fastest 1024^3 sgemm call on 1 thread: %s)" % (
               corename, "OPENBLAS_CORETYPE=%s set for the OpenBLAS and PyTorch processes" % args.core
               if args.core else "OpenBLAS's own choice", ", ".join(
                   "%s %.1f ms" % (name if core else "detected " + name, ms) for core, name, ms in tried)),
           "- threads: %s; %d rounds, each engine in its own process per round, up to %d timed calls per "
           "process within %.3g s after the warm-up" % (", ".join(map(str, threads)), args.rounds, args.reps,
                                                       args.budget),
           "- load average before the run: %s, after: %s (other work on the machine slows every engine)"
           % (" ".join(info["load"]), " ".join(read("/proc/loadavg").split()[:3])), "",
           "## Machine limits (measured by probes.c)", "",
           "| threads | FMA peak GFLOP/s | %s |" % " | ".join(
               "%s read GB/s (%s/thread)" % (n, fmt_bytes(b)) for n, b, _, _ in limits["bw"]),
           "| --- | --- |" + " --- |" * len(limits["bw"])]
    for t in threads:
        out.append("| %d | %.0f | %s |" % (t, limits["peak"][t], " | ".join("%.1f" % g[t] for _, _, _, g in
                                                                             limits["bw"])))
    out += ["", "## Workloads", "", "| workload | what | GFLOP/forward | seqc build s | .so KiB | weights MiB "
            "(separate .safetensors) | check vs PyTorch |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for p in prepared:
        out.append("| %s | %s | %.3g | %s | %s | %.3g | %s |" % (
            p.w.key, p.w.title, p.w.flops / 1e9, "%.2f" % p.build_s if p.build_s is not None else "-",
            "%.0f" % (p.so_bytes / 1024) if p.so_bytes else "-", p.weight_bytes / 2**20,
            p.check or "FAILED: " + (p.error or "not run")))
    out += ["", "## Results", "",
            "Median and min–max over all timed calls of all processes; `t/t_seqc` is the engine's median "
            "over seqc's in this run (above 1: seqc is faster); GFLOP/s from the median.", "",
            "| workload | threads | engine | median ms | min–max ms | processes / calls | t/t_seqc | GFLOP/s | "
            "% FMA peak | peak RSS MiB | RSS − weights MiB |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in prepared:
        rows = results_rows(p, limits, threads)
        out += rows if rows else ["| %s | | not timed: %s | | | | | | | | |" % (p.w.key, p.error)]
    failed = [p for p in prepared if p.error and p.runs]
    if failed:
        out += [""] + ["- %s: stopped after a failure: %s" % (p.w.key, p.error) for p in failed]
    out += ["", "## Roofline", "",
            "Bytes of weights every sequential step reads, at the bandwidth of the level that holds them, "
            "and the FLOPs at the FMA peak: lower bounds per forward.", ""]
    out += [roofline(p, limits, threads) for p in prepared if p.runs]
    out += ["", "## Floors of issue 8", ""] + floors(prepared, threads)
    return "\n".join(out) + "\n"


def floors(prepared, threads):
    """The issue's 'done when' floors, judged on this run's same-run ratios."""
    by_key = {p.w.key: p for p in prepared}
    want = [("G1-512", "openblas", 0.75, "seqc >= 75% of OpenBLAS"), ("G1-2048", "openblas", 0.75,
                                                                      "seqc >= 75% of OpenBLAS"),
            ("B2", "torch", 1.3, "seqc >= 1.3x PyTorch")]
    lines = []
    for t in threads:
        for key, engine, floor, text in want + [("B4", "torch", 1.0 if t == 1 else 1.2,
                                                 "seqc >= %sx PyTorch" % ("1.0" if t == 1 else "1.2"))]:
            p = by_key.get(key)
            s, b = (engine_stats(p, engine, t), engine_stats(p, "seqc", t)) if p else (None, None)
            if not s or not b:
                continue
            r = s["median"] / b["median"]
            lines.append("- %s, %d thread%s: %s: %.3g%s -> %s" % (
                key, t, "s" if t > 1 else "", text, 100 * r if engine == "openblas" else r,
                "%" if engine == "openblas" else "x", "met" if r >= floor else "NOT met"))
    return lines or ["- (no floor workload was timed)"]


# ---------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench.py", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=10, help="timed calls per process at most (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="processes per engine and thread count (default 3)")
    ap.add_argument("--budget", type=float, default=2.0,
                    help="seconds of timed calls per process at most (at least 1 call; default 2)")
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--only", help="workloads to run, e.g. B1,G1 (G1 is G1-512 and G1-2048); default all")
    ap.add_argument("--tol", type=float, default=1e-3, help="check tolerance, atol = rtol (default 1e-3)")
    ap.add_argument("--build", default=os.path.join(REPO, "build"), help="seqc's build directory (default build)")
    args = ap.parse_args(argv)
    args.build = os.path.abspath(args.build)
    try:
        args.threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        ap.error("--threads takes a comma-separated list of counts, e.g. 1,2")
    if any(t < 1 for t in args.threads) or args.reps < 1 or args.rounds < 1 or args.budget < 0:
        ap.error("--threads, --reps and --rounds must be at least 1, --budget at least 0")
    keys = [w.key for w in workloads.ALL]
    if args.only:
        wanted = [k.strip() for k in args.only.split(",") if k.strip()]
        bad = [k for k in wanted if not any(key == k or key.split("-")[0] == k for key in keys)]
        if bad:
            ap.error("unknown workload %s (known: %s, G1)" % (", ".join(bad), ", ".join(keys)))
        args.workloads = [w for w in workloads.ALL if w.key in wanted or w.key.split("-")[0] in wanted]
    else:
        args.workloads = list(workloads.ALL)
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)  # this process only prepares; it must not compete with the timed ones
    bins = os.path.join(args.build, "bench")
    seqc = os.path.join(args.build, "seqc")
    work = os.path.join(bins, "work")
    start = time.perf_counter()
    info = machine()
    try:
        log("bench: probing the FMA peak and read bandwidths")
        limits = probe(bins, args.threads, info["caches"])
        log("bench: choosing OpenBLAS's kernel")
        args.core, corename, tried = choose_openblas_core(bins, info["flags"])
    except BenchError as e:
        log("bench: %s" % e)
        return 1
    prepared, torch_info = [], {}
    for w in args.workloads:
        log("bench: %s: %s" % (w.key, w.title))
        p = None
        try:
            p = prepare(w, work, seqc)
            check(p, bins, args)
            for t in args.threads:
                time_rounds(p, bins, args, t)
            torch_info = torch_info or p.runs[("torch", args.threads[0])][0]
        except BenchError as e:
            log("bench: %s: %s" % (w.key, e))
            p = p or Prepared(w, work)
            p.error = str(e)
        prepared.append(p)
    text = report(args, info, limits, prepared, torch_info, corename, tried)
    path = os.path.join(bins, "results.md")
    with open(path, "w") as f:
        f.write(text)
    sys.stdout.write(text)
    log("bench: wrote %s in %.0f s" % (path, time.perf_counter() - start))
    return 1 if any(p.error for p in prepared) else 0


if __name__ == "__main__":
    sys.exit(main())
