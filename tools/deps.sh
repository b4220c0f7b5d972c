#!/bin/sh
# Installs the Debian packages seqc needs (DESIGN.md, "Dependencies") when any
# is missing; does nothing otherwise. With --bench, the packages only
# `make bench` needs instead (docs/performance.md): OpenBLAS, the GEMM
# baseline (once installed, also the BLAS Debian's PyTorch runs on), and
# tcmalloc, preloaded into the PyTorch processes.
set -eu
pkgs="llvm-19-dev llvm-19-tools libyaml-dev libcmocka-dev python3-torch"
if [ "${1:-}" = --bench ]; then
  pkgs="libopenblas-dev libtcmalloc-minimal4"
elif [ $# -gt 0 ]; then
  echo "usage: tools/deps.sh [--bench]" >&2
  exit 2
fi
missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
echo "seqc: installing missing packages:$missing"
if [ "$(id -u)" = 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "seqc: cannot install as this user; run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
  exit 1
fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $missing
