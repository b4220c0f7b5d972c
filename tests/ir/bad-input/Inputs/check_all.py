"""Runs seqc on every hostile input in DIR and requires, for each: exit
status 1 and a diagnostic naming the file, within 2 s and 256 MiB of peak
resident memory (PLAIN, an uninstrumented build), and no sanitizer report
(SAN, the ASan+UBSan build, whose reports exit with status 86).

usage: check_all.py DIR PLAIN SAN
"""
import os
import resource
import subprocess
import sys
import time

LIMIT_SECONDS = 2.0
LIMIT_BYTES = 256 << 20


def command(path):
    return "weights" if path.endswith(".safetensors") else "opt"


def run_bounded(plain, path):
    """Exit status, stderr and seconds of one uninstrumented run."""
    start = time.monotonic()
    try:
        proc = subprocess.run([plain, command(path), path], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=LIMIT_SECONDS * 5)
        rc, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as e:
        rc, err = "timeout", e.stderr or b""
    return rc, err.decode(errors="replace"), time.monotonic() - start


def check_plain(path, name, plain):
    """Problems of the uninstrumented run. RUSAGE_CHILDREN's peak is the
    largest of all children so far, so these runs all come before any
    sanitized one (whose shadow memory is large by design)."""
    rc, err, seconds = run_bounded(plain, path)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    problems = []
    if rc != 1:
        problems.append("exit status %s, expected 1" % rc)
    if name not in err:
        problems.append("the diagnostic does not name the file: %r" % err[:200])
    if seconds > LIMIT_SECONDS:
        problems.append("took %.2f s" % seconds)
    if peak > LIMIT_BYTES:
        problems.append("peak RSS %d MiB" % (peak >> 20))
    return problems


def check_sanitized(path, san):
    env = dict(os.environ, ASAN_OPTIONS="exitcode=86:detect_leaks=1",
               UBSAN_OPTIONS="halt_on_error=1:exitcode=86:print_stacktrace=1")
    run = subprocess.run([san, command(path), path], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    if run.returncode == 1:
        return []
    return ["under sanitizers: exit status %d: %s" %
            (run.returncode, run.stderr.decode(errors="replace")[:400])]


def main():
    directory, plain, san = sys.argv[1:4]
    names = sorted(os.listdir(directory))
    problems = {name: check_plain(os.path.join(directory, name), name, plain) for name in names}
    for name in names:
        problems[name] += check_sanitized(os.path.join(directory, name), san)
    failures = 0
    for name in names:
        for p in problems[name]:
            print("FAIL: %s %s: %s" % (command(name), name, p))
        failures += bool(problems[name])
    print("checked %d hostile inputs, %d failed" % (len(names), failures))
    return 1 if failures else 0


sys.exit(main())
