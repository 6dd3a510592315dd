#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: installs what the tests need (Debian
# packages; the tests run losetup for loop devices), then runs every test of the workspace.
# README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v losetup >/dev/null 2>&1 || packages+=(mount)
command -v ip >/dev/null 2>&1 || packages+=(iproute2)
# The netns testbed: partitions are nftables rules; services announce with a gratuitous ARP.
command -v nft >/dev/null 2>&1 || packages+=(nftables)
command -v arping >/dev/null 2>&1 || packages+=(iputils-arping)
if ((${#packages[@]})); then
    if [ "$(id -u)" = 0 ]; then
        echo "tools/test.sh: installing ${packages[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
    else
        echo "tools/test.sh: WARNING: ${packages[*]} missing and not root: tests that need them will skip" >&2
    fi
fi
if [ "$(id -u)" != 0 ]; then
    echo "tools/test.sh: WARNING: not root: loop-device and network-namespace tests will SKIP" >&2
fi

# cargo prints one "test result" line per test binary (the last is often the doc-tests' 0);
# sum them into one closing line so a reader of the log sees the whole count.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
