#!/bin/sh
# chunk-same.sh CHECK DIR WEIGHTS A.so B.so... -- SYM=N ...  (chunked-scan.test)
#
# Runs threads_check (CHECK) on every shared object with the same weights
# and dims: each must give the same bytes on 1, 2 and 3 threads, and then
# every output (and input) it dumps must be byte for byte the first
# object's. Prints "same: N objects, M files" or the first difference
# (exit 1). The objects must be of one model (one name, so in different
# directories).
set -e
check=$1 dir=$2 weights=$3
shift 3
objs=
while [ "$1" != "--" ]; do objs="$objs $1"; shift; done
shift
n=0 first=
for so in $objs; do
  n=$((n + 1))
  rm -rf "$dir/$n" && mkdir -p "$dir/$n"
  "$check" "$so" "$weights" "$@" --dump "$dir/$n" > "$dir/$n.log" || { cat "$dir/$n.log"; exit 1; }
  grep -q '^threads ok' "$dir/$n.log" || { cat "$dir/$n.log"; exit 1; }
  [ -n "$first" ] || first=$dir/$n
done
files=0
for f in "$first"/*.bin; do
  files=$((files + 1))
  i=1
  while [ $i -lt $n ]; do
    i=$((i + 1))
    cmp "$f" "$dir/$i/$(basename "$f")" || { echo "chunk-same: $(basename "$f") differs in object $i"; exit 1; }
  done
done
echo "same: $n objects, $files files"
