#!/usr/bin/env bash
# tiny_fmnist.sh SRC DST NTRAIN NTEST: the first NTRAIN training and NTEST test images of the
# Fashion-MNIST files in SRC, written as plain IDX files into DST, so that a search runs in
# seconds in the tests. The header's count is rewritten; the images are the real ones.
set -eu
src=$1 dst=$2 ntrain=$3 ntest=$4
mkdir -p "$dst"
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
# head closes the pipe early on purpose, so zcat's SIGPIPE is not an error here.
cut() {
  local prefix=$1 n=$2
  { printf '\x00\x00\x08\x03'; be32 "$n"; be32 28; be32 28
    { zcat -f "$src/$prefix-images-idx3-ubyte"* || true; } | tail -c +17 | head -c $((n * 784)); } \
    > "$dst/$prefix-images-idx3-ubyte"
  { printf '\x00\x00\x08\x01'; be32 "$n"
    { zcat -f "$src/$prefix-labels-idx1-ubyte"* || true; } | tail -c +9 | head -c "$n"; } \
    > "$dst/$prefix-labels-idx1-ubyte"
}
cut train "$ntrain"
cut t10k "$ntest"
size=$(stat -c %s "$dst/train-images-idx3-ubyte")
[[ $size == $((16 + ntrain * 784)) ]] || { echo "tiny_fmnist.sh: $src holds fewer than $ntrain training images" >&2; exit 1; }
echo "wrote $ntrain training and $ntest test images to $dst"
