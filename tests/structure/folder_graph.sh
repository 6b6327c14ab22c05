#!/usr/bin/env bash
# folder_graph.sh INCLUDE_DIR: the library's folders (space, cost, io, json, search, nn, ...) must
# include each other without a cycle, so that each can be understood, and used, on top of the
# ones below it. Prints the order, or the loop and exit code 1.
set -euo pipefail
root=$1/pcnas
edges=$(for header in "$root"/*/*.hpp "$root"/*/*/*.hpp; do
  [[ -f $header ]] || continue
  from=${header#"$root"/}
  from=${from%%/*}
  sed -n 's|^#include <pcnas/\([a-z_]*\)/.*>.*|\1|p' "$header" | while read -r to; do
    if [[ $to != "$from" ]]; then echo "$from $to"; fi
  done
done | sort -u)
if ! order=$(echo "$edges" | tsort 2>&1); then
  echo "the folders under $root include each other in a loop:" >&2
  echo "$order" >&2
  exit 1
fi
echo "folder order (each folder includes only folders after it):" $order
