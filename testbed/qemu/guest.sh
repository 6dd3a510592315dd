#!/bin/sh
# Runs one wolfpack node inside a testbed VM (started by init; the host shipped it on the app
# disk). Kernel arguments: tb.id=N (node id), tb.ip=198.18.0.N/24, tb.io=direct|mmap|default,
# tb.watchdog=DRIVER (the node feeds /dev/watchdog0, which init's DRIVER module made),
# tb.groups=test|catalog (test: built-in test groups 1 and 2; catalog: node 1 adds groups g1
# (preferred node 1) and g2 (preferred node 2, failback immediate) to the replicated catalog
# once both nodes are members, each with one process resource named group-1 and group-2, so
# the host's scripts read the same event-log lines either way).
#
# Serial ports, each line timestamped by the host as it arrives:
#   ttyS0 (console): kernel, init, the node's log, and "wp-ev <µs> <event>" for every cluster
#                    event of the node (wolfpack ctl events --follow; µs of CLOCK_MONOTONIC).
#   ttyS1 (events):  the resource monitor's event log itself ("<µs> node=N resource=R
#                    online|offline", --event-log /dev/ttyS1), and "pong <seq> <ns>" answers to
#                    the host's "ping <seq>" lines, which bound the guest-to-host clock offset.
#                    The host's "go" line on this port starts the node; "freeze" SIGSTOPs
#                    every wolfpack process (daemon, monitor, ctl), as a hung node would stop.
id=${TB_ID:?tb.id missing}
say() { echo "wp-init: $*"; }

ip link set lo up
ip addr add "${TB_IP:?tb.ip missing}" dev eth0
ip link set eth0 up

# CLOCK_MONOTONIC in ns (the kernel's ktime_get, the clock of the event log's µs).
monotonic_ns() { sed -n '/^now at /{s/^now at \([0-9]*\) nsecs.*/\1/p;q}' /proc/timer_list; }
# SIGSTOP for every process running /app/wolfpack. The resources' own processes (busybox
# sleep) keep running: they are what a node frozen past its lease could still be running.
freeze_wolfpack() {
    pids=""
    for exe in /proc/[0-9]*/exe; do
        [ "$(readlink "$exe" 2>/dev/null)" = /app/wolfpack ] || continue
        pid=${exe#/proc/}
        pids="$pids ${pid%/exe}"
    done
    # shellcheck disable=SC2086 # one word per pid
    kill -STOP $pids
    say "froze wolfpack pids:$pids"
}
stty -F /dev/ttyS1 -echo
(
    exec 3</dev/ttyS1
    while read -r word seq <&3; do
        now=$(monotonic_ns)
        case "$word" in
        ping) echo "pong $seq $now" >/dev/ttyS1 ;;
        go) : >/run/go ;;
        freeze) freeze_wolfpack ;;
        esac
    done
) &

chmod 600 /app/cluster.key
set -- node --disk /dev/disk-shared --node-id "$id" --key /app/cluster.key \
    --admin-socket /run/wolfpack.sock --event-log /dev/ttyS1 --resource-log-dir /var/log/wp
if [ -n "${TB_WATCHDOG:-}" ]; then
    set -- "$@" --watchdog /dev/watchdog0
fi
case "${TB_IO:-default}" in
default) ;;
*) set -- "$@" --disk-io "$TB_IO" ;;
esac
if [ "${TB_GROUPS:-test}" = test ]; then
    for group in 1 2; do
        set -- "$@" --test-group "$group=exec sleep 1000000"
    done
fi
# Wait for the host's "go" (sent once both VMs are up), so both nodes start together.
while [ ! -e /run/go ]; do sleep 0.05; done
say "starting wolfpack $*"
RUST_LOG=${TB_LOG:-info} /app/wolfpack "$@" &
node=$!
(
    while kill -0 "$node" 2>/dev/null; do
        if [ -S /run/wolfpack.sock ]; then
            # Event lines are "WALL node=N epoch=E mono_us=µs CATEGORY SUBJECT TEXT"; the host's
            # scripts read "wp-ev <µs> <text>".
            /app/wolfpack ctl --socket /run/wolfpack.sock events --follow 2>/dev/null |
                while read -r _wall _node _epoch mono _category _subject text; do
                    echo "wp-ev ${mono#mono_us=} $text"
                done
        fi
        sleep 0.1
    done
) &
if [ "${TB_GROUPS:-test}" = catalog ] && [ "$id" = 1 ]; then
    (
        ctl() { /app/wolfpack ctl --socket /run/wolfpack.sock "$@"; }
        until ctl status 2>/dev/null | grep -q 'members {1,2}'; do sleep 0.2; done
        ctl group add g1 --preferred 1,2 &&
            ctl group add g2 --preferred 2,1 --failback immediate &&
            ctl resource add group-1 --group g1 --type process --param 'command=exec sleep 1000000' &&
            ctl resource add group-2 --group g2 --type process --param 'command=exec sleep 1000000' &&
            say "catalog: groups g1 (preferred n1) and g2 (preferred n2, failback immediate) added"
    ) &
fi
wait "$node"
say "wolfpack node exited rc=$?"
