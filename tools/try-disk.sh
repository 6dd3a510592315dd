#!/usr/bin/env bash
# A first look at wolfpack, runnable on a fresh machine without root: builds the binary, formats
# a shared disk for a three-node cluster in a temporary folder, dumps it, damages one byte of a
# node's lease slot and shows that `disk check` finds it. (Until `wolfpack demo` exists.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
wolfpack=target/release/wolfpack
work=$(mktemp -d /var/tmp/wolfpack-try.XXXXXX)
trap 'rm -rf "$work"' EXIT
disk=$work/shared.img

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step "$wolfpack" disk format "$disk" --cluster-name try --size 16M \
    --node 1=alpha@127.0.0.1:7401 --node 2=beta@127.0.0.1:7402 --node 3=gamma@127.0.0.1:7403
step "$wolfpack" disk dump "$disk"
step "$wolfpack" disk check "$disk"
# The node-slots region starts at block 66 (FORMAT.md section 2); flip a byte in node 2's slot.
offset=$(( (66 + 1) * 4096 + 100 ))
printf '\n\033[1m# flipping one byte at offset %d (node 2 lease slot)\033[0m\n' "$offset"
printf '\x5a' | dd of="$disk" bs=1 seek="$offset" conv=notrunc status=none
set +e
step "$wolfpack" disk check "$disk"
echo "(exit status $?: the damaged slot is named with its region, index and byte offset)"
