# lit configuration for seqc's IR tests: every .sqir/.test file here is a test
# whose RUN lines drive %seqc and FileCheck (from LLVM 19's tools).
import os
import lit.formats

config.name = "seqc-ir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".sqir", ".test"]
config.excludes = ["Inputs", "lit.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
root = os.path.dirname(os.path.dirname(config.test_source_root))
config.test_exec_root = os.path.join(root, "build", "lit")

seqc = lit_config.params.get("seqc", os.path.join(root, "build", "seqc"))
config.substitutions.append(("%seqc_plain", os.path.join(root, "build", "seqc")))
config.substitutions.append(("%seqc", os.path.abspath(seqc)))
config.substitutions.append(("%models", os.path.join(root, "models")))

llvm_bin = "/usr/lib/llvm-19/bin"
config.environment["PATH"] = llvm_bin + os.pathsep + os.environ.get("PATH", "")
for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
    if var in os.environ:
        config.environment[var] = os.environ[var]

# `REQUIRES: asan`: the seqc under test carries the AddressSanitizer
# runtime (make SANITIZE=1, build/asan/seqc, which `make test` runs these
# tests with), so it can run the memory plan's test mode (--memplan-check,
# docs/cli.md), whose code calls that runtime. ASan answers help=1 in
# ASAN_OPTIONS with its flags; a seqc without it ignores the variable.
import subprocess


def has_asan_runtime(path):
    env = dict(os.environ, ASAN_OPTIONS="help=1")
    try:
        r = subprocess.run([path, "--version"], env=env, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"AddressSanitizer" in r.stdout + r.stderr


if has_asan_runtime(os.path.abspath(seqc)):
    config.available_features.add("asan")
