#!/bin/sh
# Installs the Debian packages only `make bench` needs (docs/performance.md)
# when any is missing; does nothing otherwise. OpenBLAS is the GEMM baseline
# (and, once installed, the BLAS Debian's PyTorch runs on); tcmalloc is
# preloaded into the PyTorch processes. As tools/deps.sh: as root, through
# sudo, or else it prints the command to run.
set -eu
pkgs="libopenblas-dev libtcmalloc-minimal4"
missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
echo "seqc bench: installing missing packages:$missing"
if [ "$(id -u)" = 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "seqc bench: cannot install as this user; run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
  exit 1
fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $missing
