#!/bin/sh
# Runs every test suite and ends with one line "N passed, N failed, N skipped":
#   1. cmocka unit tests (build/tests/test_*),
#   2. the same unit tests built with ASan+UBSan (build/asan/tests/test_*),
#   3. lit + FileCheck IR tests (tests/ir) against the sanitized compiler,
#   4. PyTorch parity of the layers, the PyTorch bridge and the model zoo
#      (tests/torch), or three skips without torch.
# Exit status 0 only when nothing failed.
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0 skipped=0
log=build/test-logs
mkdir -p "$log"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)...".
run_unit() {
  bin=$1
  name=$(echo "$bin" | tr / _)
  out="$log/$name.log"
  "$bin" >"$out" 2>&1
  rc=$?
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
  s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
  p=${p:-0} f=${f:-0} s=${s:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1 # crashed or sanitizer report before cmocka could count
  fi
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  if [ "$f" -ne 0 ]; then
    echo "FAIL: $bin (log: $out)"
    tail -n 40 "$out"
  else
    echo "ok:   $bin ($p passed)"
  fi
}

for bin in build/tests/test_* build/asan/tests/test_*; do
  [ -x "$bin" ] || continue
  run_unit "$bin"
done

lit=/usr/lib/llvm-19/build/utils/lit/lit.py
out="$log/lit.log"
python3 "$lit" -v --param seqc=build/asan/seqc tests/ir >"$out" 2>&1
rc=$?
p=$(sed -n 's/^ *Passed *: *\([0-9]*\).*/\1/p' "$out" | tail -1)
f=$(sed -n 's/^ *Failed *: *\([0-9]*\).*/\1/p' "$out" | tail -1)
u=$(sed -n 's/^ *Unsupported *: *\([0-9]*\).*/\1/p' "$out" | tail -1)
p=${p:-0} f=${f:-0} u=${u:-0}
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + u))
if [ "$f" -ne 0 ]; then
  grep -E '^(FAIL|UNRESOLVED|XPASS)' "$out"
  echo "(lit log: $out)"
else
  echo "ok:   lit tests/ir ($p passed)"
fi

# PyTorch parity of the layers (tests/torch/parity.py): needs Debian's
# python3-torch, which imports only from /usr/bin/python3 (`make deps`).
# Its work directory is kept when a case fails, for a look at the models.
torch_py=/usr/bin/python3

# run_torch LABEL SCRIPT: runs a torch suite whose last line is
# "LABEL: N passed, M failed" and adds its counts.
run_torch() {
  label=$1 script=$2
  out="$log/$(echo "$label" | tr ' ' -).log"
  work=$(mktemp -d "${TMPDIR:-/tmp}/seqc-torch.XXXXXX")
  "$torch_py" "$script" --seqc build/seqc --work "$work" >"$out" 2>&1
  rc=$?
  p=$(sed -n "s/^$label: \([0-9]*\) passed.*/\1/p" "$out" | tail -1)
  f=$(sed -n "s/^$label: [0-9]* passed, \([0-9]*\) failed.*/\1/p" "$out" | tail -1)
  p=${p:-0} f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)) failed=$((failed + f))
  if [ "$f" -ne 0 ]; then
    grep -E '^FAIL' "$out" || tail -n 20 "$out"
    echo "($label log: $out, models and outputs: $work)"
  else
    echo "ok:   $label ($p passed)"
    rm -rf "$work"
  fi
}

if "$torch_py" -c 'import torch' >/dev/null 2>&1; then
  run_torch "torch parity" tests/torch/parity.py
  # The PyTorch bridge (tools/export_torch.py): export, run, compare.
  run_torch "torch export" tests/torch/test_export.py
  # The model zoo (models/*.yaml against tests/torch_ref/*.py, docs/models.md).
  run_torch "model zoo" tests/torch/zoo.py
else
  echo "skip: torch parity tests (python3-torch not importable from /usr/bin/python3)"
  echo "skip: torch export tests (python3-torch not importable from /usr/bin/python3)"
  echo "skip: model zoo (python3-torch not importable from /usr/bin/python3)"
  skipped=$((skipped + 3))
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
