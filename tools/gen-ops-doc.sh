#!/bin/sh
# Regenerates docs/ops.md from the op table (through `seqc help ops`).
set -eu
cd "$(dirname "$0")/.."
seqc=${1:-build/seqc}
{
  printf '# Op reference\n\nGenerated from `ir/ops.def` by `seqc help ops` (a lit test checks that this\n'
  printf 'page is current: regenerate it with `tools/gen-ops-doc.sh`). Semantics chosen\n'
  printf 'where a one-line meaning is silent are listed at the top of `ir/interp.c`;\n'
  printf 'the text form is described in `ir.md`.\n\n```\n'
  "$seqc" help ops
  printf '```\n'
} > docs/ops.md.tmp
mv docs/ops.md.tmp docs/ops.md
