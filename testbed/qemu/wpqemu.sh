#!/usr/bin/env bash
# The QEMU testbed: two VMs that share one raw disk image through wolfpack's `direct` backend.
#
#   testbed/qemu/wpqemu.sh setup          install packages, fetch the kernel (idempotent)
#   testbed/qemu/wpqemu.sh basic          form, group online, SIGKILL the owner's QEMU, takeover
#   testbed/qemu/wpqemu.sh partition      form, cut the link (set_link off), one side keeps the
#                                         groups, no overlap; restore the link, re-form
#   testbed/qemu/wpqemu.sh mmap-control   the partition with --disk-io mmap forced: expected to
#                                         misbehave (stale page-cache reads across VMs)
#   testbed/qemu/wpqemu.sh watchdog       each guest has an emulated i6300esb watchdog (reset action)
#                                         fed by its node; form, SIGSTOP every wolfpack process of
#                                         group 1's owner: the watchdog resets that guest, the
#                                         other takes over, no overlap (the generic kernel: the
#                                         cloud one has no i6300esb driver)
#   testbed/qemu/wpqemu.sh watchdog-control  the same without a watchdog: expected to misbehave
#                                         (no reset; the frozen guest keeps group 1's process
#                                         while the other runs it too)
#   testbed/qemu/wpqemu.sh all            basic, partition, mmap-control, watchdog, watchdog-control
#   testbed/qemu/wpqemu.sh ci             basic, with a timeout and one retry (tools/test.sh)
#
# Needs root (apt-get, and nothing else). Each run builds wolfpack (static glibc), an initramfs
# (busybox-static + the cloud kernel's virtio modules + testbed/qemu/init), an app disk (a tar
# of wolfpack, the key and testbed/qemu/guest.sh), formats a sparse 64 MiB image, and boots two
# TCG VMs on a private L2 link (-netdev dgram over unix sockets, 198.18.0.1 and .2).
#
# Environment:
#   TB_WORK_PARENT  where the run's work folder wp-<run>-qemu is made (default /tmp)
#   TB_CACHE        where the kernel package is kept between runs (default /var/cache/wolfpack-qemu)
#   TB_KEEP=1       keep the work folder (logs) after the run; TB_LOGS=DIR copies the logs there
#   TB_BOOT_TIMEOUT seconds for a VM to reach init (default 120)
#   TB_TIMEOUT      seconds for each other condition (default 90)
#   TB_TIMING       heartbeat,renew,expiry,fence in ms for 'disk format' (default 100,250,6000,3000;
#                   its fence timeout covers a watchdog of 2 s, the whole seconds it may use)
#   TB_KERNEL       cloud (linux-image-cloud-amd64, the default) or generic (linux-image-amd64,
#                   the default of the watchdog scenarios: it has the i6300esb driver; slower boot)
#   TB_BINARY       use this wolfpack binary instead of building one
#   TB_MEM          MiB per VM (default 128)
#   TB_FAULT        noinit (the kernel finds no init and panics) or stall (init never comes up):
#                   shows the "VM never reaches init" failure path
#   TB_PACKAGES     override the Debian package list (shows the "missing packages" path)
#   TB_ROOM_MB      free space the work folder needs (default 200)
#
# Every VM and helper is stopped by the PID recorded when it was started; the work folder is
# removed at the end, also on failure or Ctrl-C (unless TB_KEEP=1).
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUN="$$-$(date +%s)"
WORK="${TB_WORK_PARENT:-/tmp}/wp-$RUN-qemu"
CACHE=${TB_CACHE:-/var/cache/wolfpack-qemu}
BOOT_TIMEOUT=${TB_BOOT_TIMEOUT:-120}
TIMEOUT=${TB_TIMEOUT:-90}
TIMING=${TB_TIMING:-100,250,6000,3000}
KERNEL_FLAVOUR=${TB_KERNEL:-cloud}
# Set by build_initramfs for the watchdog scenarios: i6300esb (QEMU's emulated PCI watchdog,
# when the kernel has its driver) or softdog (the guest kernel's own timer, when it does not).
WATCHDOG_DRIVER=""
MEM=${TB_MEM:-128}
PACKAGES=${TB_PACKAGES:-qemu-system-x86 busybox-static cpio}
ROOM_MB=${TB_ROOM_MB:-200}
T0=${EPOCHREALTIME/./}
STEP="start"
declare -A QEMU_PID=() DEAD_AT=()
HELPER_PIDS=()
WORK_MADE=0
FAILED=0

# ---------------------------------------------------------------------------------------------
# Plumbing: steps, failure messages, clean-up

now_us() { local t=${EPOCHREALTIME/./}; echo $((t - T0)); }
log() { printf '[%7.1fs] %s\n' "$(awk -v t="$(now_us)" 'BEGIN{print t/1e6}')" "$*"; }
step() {
    STEP=$1
    log "step: $STEP"
}
fail() {
    echo "wpqemu: FAIL at step '$STEP': $*" >&2
    FAILED=1
    exit 1
}
on_error() {
    local status=$1 line=$2 command=$3
    echo "wpqemu: FAIL at step '$STEP': '$command' exited $status (wpqemu.sh line $line)" >&2
    FAILED=1
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM
trap cleanup EXIT

stop_vm() {
    local n=$1 pid=${QEMU_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    DEAD_AT[$n]=$(now_us)
    unset "QEMU_PID[$n]"
}

cleanup() {
    local status=$?
    trap - ERR
    set +e
    for n in "${!QEMU_PID[@]}"; do
        echo "wpqemu: killing VM n$n (QEMU pid ${QEMU_PID[$n]})" >&2
        stop_vm "$n"
    done
    for pid in "${HELPER_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "$WORK_MADE" = 1 ]; then
        if [ "$status" != 0 ] || [ "$FAILED" = 1 ]; then
            for file in "$WORK"/n?.con.log "$WORK"/n?.qemu.err; do
                [ -s "$file" ] || continue
                echo "--- last lines of $(basename "$file") ---" >&2
                tail -n 25 "$file" >&2
            done
        fi
        if [ -n "${TB_LOGS:-}" ]; then
            mkdir -p "$TB_LOGS" && cp "$WORK"/*.log "$WORK"/*.err "$WORK"/*.txt "$TB_LOGS"/ 2>/dev/null
            echo "wpqemu: logs copied to $TB_LOGS" >&2
        fi
        if [ "${TB_KEEP:-0}" = 1 ]; then
            echo "wpqemu: work folder kept: $WORK" >&2
        else
            rm -rf "$WORK"
            [ -e "$WORK" ] && echo "wpqemu: could not remove $WORK" >&2
        fi
    fi
    exit "$status"
}

# ---------------------------------------------------------------------------------------------
# Host preparation

need_root() {
    [ "$(id -u)" = 0 ] || fail "not root: the testbed installs Debian packages (run it as root)"
}

is_dynamic() { ldd "$1" 2>/dev/null | grep -q '=>'; }

missing_commands() {
    local missing=()
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86_64)
    command -v cpio >/dev/null || missing+=(cpio)
    if ! [ -x /bin/busybox ] || is_dynamic /bin/busybox; then
        missing+=("busybox (static)")
    fi
    command -v dpkg >/dev/null || missing+=(dpkg)
    echo "${missing[*]}"
}

install_packages() {
    step "install packages ($PACKAGES)"
    local missing
    missing=$(missing_commands)
    if [ -z "$missing" ] && [ -z "${TB_PACKAGES:-}" ]; then
        log "packages present"
        return 0
    fi
    need_root
    log "installing $PACKAGES (missing: ${missing:-none}); note: installing qemu-system-x86 removes a preinstalled qemu-utils backport (qemu-img), which nothing here needs"
    # shellcheck disable=SC2086
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends $PACKAGES; } >"${WORK}.apt.log" 2>&1; then
        tail -n 5 "${WORK}.apt.log" >&2
        rm -f "${WORK}.apt.log"
        fail "apt-get could not install: $PACKAGES"
    fi
    rm -f "${WORK}.apt.log"
    missing=$(missing_commands)
    [ -z "$missing" ] || fail "still missing after apt-get install: $missing"
}

# The Debian meta package of the kernel flavour, and a glob for its versioned package (the
# generic glob must not match the cloud package: its version ends in a digit before -amd64).
kernel_meta() { case "$KERNEL_FLAVOUR" in generic) echo linux-image-amd64 ;; *) echo linux-image-cloud-amd64 ;; esac; }
kernel_glob() { case "$KERNEL_FLAVOUR" in generic) echo 'linux-image-*[0-9]-amd64_*.deb' ;; *) echo 'linux-image-*-cloud-amd64_*.deb' ;; esac; }

kernel_package() {
    local name meta
    meta=$(kernel_meta)
    name=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
    if [ -z "$name" ]; then
        apt-get update -qq >/dev/null 2>&1 || true
        name=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
    fi
    echo "$name"
}

fetch_kernel() {
    step "fetch the kernel package (apt-get download into $CACHE)"
    mkdir -p "$CACHE"
    local deb
    local glob
    glob=$(kernel_glob)
    # shellcheck disable=SC2086 # the glob is meant to expand
    deb=$(ls "$CACHE"/$glob 2>/dev/null | tail -n 1 || true)
    if [ -z "$deb" ]; then
        local name
        name=$(kernel_package)
        [ -n "$name" ] || fail "apt-cache knows no $(kernel_meta) (no Debian package lists?)"
        (cd "$CACHE" && apt-get download "$name" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
        # shellcheck disable=SC2086
        deb=$(ls "$CACHE"/$glob 2>/dev/null | tail -n 1 || true)
        [ -n "$deb" ] || fail "apt-get download $name gave no .deb in $CACHE"
    fi
    KERNEL_DEB=$deb
    log "kernel package: $(basename "$deb")"
}

make_work() {
    step "make the work folder $WORK"
    local parent=${WORK%/*} free_kb
    mkdir -p "$parent" || fail "cannot create $parent"
    free_kb=$(df -Pk "$parent" | awk 'NR == 2 {print $4}')
    if [ "${free_kb:-0}" -lt $((ROOM_MB * 1024)) ]; then
        fail "no room: $parent has $((free_kb / 1024)) MiB free, the run needs $ROOM_MB MiB (set TB_WORK_PARENT)"
    fi
    mkdir "$WORK"
    WORK_MADE=1
}

build_wolfpack() {
    if [ -n "${TB_BINARY:-}" ]; then
        step "use the wolfpack binary $TB_BINARY"
        BINARY=$TB_BINARY
    else
        step "build wolfpack (release, static glibc: -C target-feature=+crt-static)"
        (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
            --target x86_64-unknown-linux-gnu --bin wolfpack) >"$WORK/build.log" 2>&1 ||
            { tail -n 20 "$WORK/build.log" >&2; fail "cargo build failed"; }
        BINARY="${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-gnu/release/wolfpack"
    fi
    [ -x "$BINARY" ] || fail "no executable at $BINARY"
}

build_initramfs() {
    step "unpack the kernel (dpkg -x into the work folder)"
    dpkg -x "$KERNEL_DEB" "$WORK/kernel"
    local modules
    modules=$(ls -d "$WORK"/kernel/lib/modules/*/kernel)
    cp "$WORK"/kernel/boot/vmlinuz-* "$WORK/vmlinuz"
    step "build the initramfs (busybox-static, virtio modules, init)"
    local stage=$WORK/initramfs
    mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,lib/modules}
    cp /bin/busybox "$stage/bin/busybox"
    local applet
    for applet in $("$stage/bin/busybox" --list-full); do
        [ -e "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
    done
    local module path
    for module in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
        virtio_blk failover net_failover virtio_net; do
        path=$(find "$modules" -name "$module.ko" | head -n 1)
        [ -n "$path" ] || fail "module $module.ko not in $(basename "$KERNEL_DEB")"
        cp "$path" "$stage/lib/modules/"
    done
    if [ "${WANT_WATCHDOG:-0}" = 1 ]; then
        # watchdog.ko (the core) first; then QEMU's i6300esb if this kernel has its driver,
        # else softdog, which resets the guest from its own kernel timer: it covers a guest
        # whose processes are stopped, not one whose kernel hangs.
        for module in watchdog i6300esb softdog; do
            path=$(find "$modules" -name "$module.ko" | head -n 1)
            [ -n "$path" ] && cp "$path" "$stage/lib/modules/"
        done
        [ -e "$stage/lib/modules/watchdog.ko" ] || fail "module watchdog.ko not in $(basename "$KERNEL_DEB")"
        if [ -e "$stage/lib/modules/i6300esb.ko" ]; then
            WATCHDOG_DRIVER=i6300esb
        elif [ -e "$stage/lib/modules/softdog.ko" ]; then
            WATCHDOG_DRIVER=softdog
            log "$(basename "$KERNEL_DEB") has no i6300esb driver (CONFIG_I6300ESB_WDT is not set): the guests use softdog"
        else
            fail "$(basename "$KERNEL_DEB") has neither i6300esb.ko nor softdog.ko"
        fi
        log "guest watchdog: $WATCHDOG_DRIVER"
    fi
    rm -rf "$WORK/kernel"
    cp "$HERE/init" "$stage/init"
    chmod 755 "$stage/init"
    mknod -m 600 "$stage/dev/console" c 5 1
    (cd "$stage" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$WORK/initrd.img"
    rm -rf "$stage"
}

build_app_disk() {
    step "build the app disk (a tar of wolfpack, the key, guest.sh)"
    local stage=$WORK/app-stage
    mkdir -p "$stage/app"
    cp "$BINARY" "$stage/app/wolfpack"
    cp "$HERE/guest.sh" "$stage/app/guest.sh"
    chmod 755 "$stage/app/guest.sh"
    if is_dynamic "$BINARY"; then
        # A dynamic binary: ship its shared libraries at their paths.
        log "wolfpack is dynamically linked: copying its ldd closure"
        ldd "$BINARY" | grep -o '/[^ ]*' | xargs -r -I{} cp -L --parents {} "$stage/"
    else
        log "wolfpack is statically linked"
    fi
    "$BINARY" keygen "$stage/app/cluster.key" >/dev/null
    tar -c -f "$WORK/app.tar" -C "$stage" .
    rm -rf "$stage"
}

format_image() {
    local io=$1
    step "create and format the shared image (sparse 64 MiB, timing $TIMING)"
    local heartbeat renew expiry fence
    IFS=, read -r heartbeat renew expiry fence <<<"$TIMING"
    truncate -s 64M "$WORK/shared.img"
    "$BINARY" disk format "$WORK/shared.img" --disk-io direct --cluster-name "wp-$RUN" \
        --node 1=n1@198.18.0.1:7400 --node 2=n2@198.18.0.2:7400 \
        --heartbeat-interval-ms "$heartbeat" --lease-renew-interval-ms "$renew" \
        --lease-expiry-ms "$expiry" --fence-timeout-ms "$fence" >"$WORK/format.txt"
    DISK_IO=$io
}

prepare() {
    install_packages
    make_work
    fetch_kernel
    build_wolfpack
    build_initramfs
    build_app_disk
}

# ---------------------------------------------------------------------------------------------
# VMs

# Reads lines and writes "<µs since the run started> <line>": the host's arrival time of each
# serial line. Runs reniced so that two busy TCG guests do not delay the timestamps.
stamp() {
    local line t
    while IFS= read -r line || [ -n "$line" ]; do
        t=${EPOCHREALTIME/./}
        printf '%s %s\n' "$((t - T0))" "${line%$'\r'}"
    done
}

# Writes "ping <seq>" to a VM's event port every 0.5 s, recording the host time just before
# each write: the guest cannot read it earlier, which bounds the guest clock's offset.
pinger() {
    local fifo=$1 record=$2 seq=0 t
    exec 4<>"$fifo"
    while :; do
        seq=$((seq + 1))
        t=${EPOCHREALTIME/./}
        echo "$seq $((t - T0))" >>"$record"
        echo "ping $seq" >&4
        sleep 0.5
    done
}

start_vm() {
    local n=$1 extra=""
    step "boot VM n$n"
    local base=$WORK/n$n
    for port in con ev mon; do mkfifo "$base.$port.in" "$base.$port.out"; done
    # -no-reboot turns a guest reset into QEMU's exit. With a watchdog the reset must reboot the
    # guest (as the machine's board would), and QMP's RESET event tells the host when it came.
    local machine=(-no-reboot)
    if [ -n "$WATCHDOG_DRIVER" ]; then
        machine=(-chardev "pipe,id=qmp,path=$base.qmp" -mon chardev=qmp,mode=control)
        [ "$WATCHDOG_DRIVER" = i6300esb ] && machine+=(-device i6300esb -action watchdog=reset)
        [ "${VM_WATCHDOG:-0}" = 1 ] && extra+=" tb.watchdog=$WATCHDOG_DRIVER"
        mkfifo "$base.qmp.in" "$base.qmp.out"
        stamp <"$base.qmp.out" >"$base.qmp.log" &
        HELPER_PIDS+=($!)
    fi
    : >"$base.pings.txt"
    stamp <"$base.con.out" >"$base.con.log" &
    HELPER_PIDS+=($!)
    stamp <"$base.ev.out" >"$base.ev.log" &
    HELPER_PIDS+=($!)
    cat <"$base.mon.out" >"$base.mon.log" &
    HELPER_PIDS+=($!)
    case "${TB_FAULT:-}" in
    noinit) extra=" rdinit=/no-such-init" ;;
    stall) extra=" rdinit=/bin/cat" ;;
    esac
    local local_sock=$WORK/n$n.net remote_sock=$WORK/n$((3 - n)).net
    qemu-system-x86_64 -name "wp-$RUN-n$n" -machine pc -accel tcg,tb-size=32 -smp 1 -m "$MEM" \
        -nodefaults -no-user-config -display none "${machine[@]}" \
        -chardev "pipe,id=con,path=$base.con" -serial chardev:con \
        -chardev "pipe,id=ev,path=$base.ev" -serial chardev:ev \
        -chardev "pipe,id=mon,path=$base.mon" -mon chardev=mon,mode=readline \
        -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
        -append "console=ttyS0 quiet panic=-1 tb.id=$n tb.ip=198.18.0.$n/24 tb.io=$DISK_IO tb.groups=${GROUP_MODE:-test}$extra" \
        -drive "file=$WORK/shared.img,format=raw,if=none,id=shared,cache=none" \
        -device virtio-blk-pci,drive=shared,serial=shared,share-rw=on \
        -drive "file=$WORK/app.tar,format=raw,if=none,id=app,readonly=on" \
        -device virtio-blk-pci,drive=app,serial=app \
        -netdev "dgram,id=n0,local.type=unix,local.path=$local_sock,remote.type=unix,remote.path=$remote_sock" \
        -device "virtio-net-pci,netdev=n0,mac=52:54:00:12:00:0$n" \
        </dev/null >"$base.qemu.out" 2>"$base.qemu.err" &
    QEMU_PID[$n]=$!
    log "VM n$n: QEMU pid ${QEMU_PID[$n]}, 198.18.0.$n, disk-io=$DISK_IO${WATCHDOG_DRIVER:+, watchdog device $WATCHDOG_DRIVER (used: ${VM_WATCHDOG:-0})}"
    if [ -n "$WATCHDOG_DRIVER" ]; then
        # QMP sends events only once capabilities are negotiated. The FIFO stays open here
        # (fds 8 and 9): a line in a FIFO that every end closed before QEMU read it is lost.
        eval "exec $((7 + n))<>\"\$base.qmp.in\""
        echo '{"execute": "qmp_capabilities"}' >&$((7 + n))
    fi
    for pid in "${HELPER_PIDS[@]: -3}"; do renice -n -10 -p "$pid" >/dev/null 2>&1 || true; done
    eval "exec $((5 + n))<>\"\$base.ev.in\""
    pinger "$base.ev.in" "$base.pings.txt" &
    HELPER_PIDS+=($!)
}

# Sends one HMP command to VM n's monitor (opened read-write: never blocks, even if QEMU died).
hmp() {
    local n=$1
    shift
    exec 5<>"$WORK/n$n.mon.in"
    echo "$*" >&5
    exec 5>&-
}

# wait_until DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds (0);
# returns 1 with the reason in WAIT_WHY at the deadline, or at once when a VM that should be
# running has exited. wait_for is the same, failing the step.
WAIT_WHY=""
wait_until() {
    local what=$1 seconds=$2
    shift 2
    local deadline=$(($(now_us) + seconds * 1000000)) n status
    while ! "$@"; do
        for n in "${!QEMU_PID[@]}"; do
            if ! kill -0 "${QEMU_PID[$n]}" 2>/dev/null; then
                status=0
                wait "${QEMU_PID[$n]}" 2>/dev/null || status=$?
                unset "QEMU_PID[$n]"
                WAIT_WHY="VM n$n (QEMU) exited with status $status while waiting for $what; QEMU stderr: '$(tail -n 3 "$WORK/n$n.qemu.err" | tr '\n' ' ')'; last console line: '$(tail -n 1 "$WORK/n$n.con.log" | cut -d' ' -f2- | cut -c1-160)'"
                return 1
            fi
        done
        if [ "$(now_us)" -ge "$deadline" ]; then
            WAIT_WHY="timed out after ${seconds}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}
wait_for() { wait_until "$@" || fail "$WAIT_WHY"; }

reached_init() { grep -q ' wp-init: ready' "$WORK/n$1.con.log" 2>/dev/null; }

boot_both() {
    start_vm 1
    start_vm 2
    step "wait for both VMs to reach init"
    wait_for "VM n1 to reach init" "$BOOT_TIMEOUT" reached_init 1
    wait_for "VM n2 to reach init" "$BOOT_TIMEOUT" reached_init 2
    log "both VMs reached init"
    echo go >&6
    echo go >&7
    host_event "go: both nodes start wolfpack"
    # A "go" that arrives before the guest's reader opened its serial port is lost (seen once
    # in CI: both guests ready, neither started): say it again until each guest says it started.
    local tries
    for tries in $(seq 1 40); do
        started 1 && started 2 && return 0
        sleep 0.5
        started 1 || echo go >&6
        started 2 || echo go >&7
    done
}
started() { grep -q ' wp-init: starting wolfpack' "$WORK/n$1.con.log" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# Reading the VMs' serial lines

# Latest "stabilized" event of node n, seen after host time $2 (µs): prints its members.
last_members() {
    awk -v after="${2:-0}" '$2 == "wp-ev" && $4 == "stabilized" && $1 >= after {m = $8} END {print m}' \
        "$WORK/n$1.con.log" 2>/dev/null
}
formed_after() { [ "$(last_members 1 "$1")" = "{1,2}" ] && [ "$(last_members 2 "$1")" = "{1,2}" ]; }

# Groups node n holds now, by the monitor's event-log lines: "1 2", "1", "" ...
groups_of() {
    awk '$3 ~ /^node=/ && $4 ~ /^resource=group-/ { g = substr($4, 16); state[g] = $5 }
         END { out = ""; for (g = 1; g <= 2; g++) if (state[g] == "online") out = out (out == "" ? "" : " ") g; print out }' \
        "$WORK/n$1.ev.log" 2>/dev/null
}
both_groups_placed() {
    local a b
    a=$(groups_of 1)
    b=$(groups_of 2)
    [ "$(echo "$a $b" | tr ' ' '\n' | grep -c .)" = 2 ] &&
        [ "$(echo "$a $b" | tr ' ' '\n' | grep . | sort -u | wc -l)" = 2 ]
}
owner_of() {
    local n
    for n in 1 2; do
        case " $(groups_of "$n") " in *" $1 "*) echo "$n" && return 0 ;; esac
    done
    echo ""
}
online_after() { # node group after_us: a group-G online line of node n that arrived after $3
    awk -v g="resource=group-$2" -v after="$3" '$4 == g && $5 == "online" && $1 >= after {found = 1} END {exit !found}' \
        "$WORK/n$1.ev.log" 2>/dev/null
}

# The analysis of one run (awk): for each VM, the guest clock's offset to the host clock is
# bracketed by every ping/pong pair: the pong's guest time g was read after the ping was written
# (host time s) and before the pong arrived (host time h), so offset c = host - guest is in
# [s - g, h - g]. Each event-log line, stamped by the guest with g_e, then happened at a host
# time in [g_e + c_lo, g_e + c_hi], with the bracket taken from the pongs within 2 s of it. An
# "online" line is written before the resource's first process starts and an "offline" line
# after its processes are gone, so the interval [g_on + c_lo, g_off + c_hi] contains every
# instant the resource could run. A VM killed by SIGKILL ran nothing after its QEMU was reaped; a
# VM reset by its watchdog ran nothing of that boot after QMP's RESET event arrived, and the
# lines that arrived later are the next boot's (its clock starts again): they are left out.
# Prints the intervals, the bracket widths (the error bound), and PASS/FAIL of the overlap check.
analyse() {
    local end_us
    end_us=$(now_us)
    awk -v base="${BASE_US:-0}" -v end="$end_us" -v dead1="${DEAD_AT[1]:-}" -v dead2="${DEAD_AT[2]:-}" '
        BEGIN { dead[1] = dead1; dead[2] = dead2 }
        { n = FILENAME; sub(/.*\/n/, "", n); n = substr(n, 1, 1) }
        FILENAME ~ /pings/ { sent[n, $1] = $2; next }
        dead[n] != "" && $1 >= dead[n] { next }
        {
            if ($2 == "pong" && $4 != "" && ((n, $3) in sent)) {
                k = ++pongs[n]; g = int($4 / 1000)
                pg[n, k] = g; plo[n, k] = sent[n, $3] - g; phi[n, k] = $1 - g
            } else if ($3 ~ /^node=/ && $4 ~ /^resource=/) {
                k = ++lines[n]; lg[n, k] = $2; lh[n, k] = $1; lr[n, k] = substr($4, 10); lt[n, k] = $5
            }
        }
        function bracket(n, g,    k, lo, hi, found) {
            lo = -1e18; hi = 1e18; found = 0
            for (k = 1; k <= pongs[n]; k++) {
                if (pg[n, k] < g - 2000000 || pg[n, k] > g + 2000000) continue
                found = 1
                if (plo[n, k] > lo) lo = plo[n, k]
                if (phi[n, k] < hi) hi = phi[n, k]
            }
            if (!found || lo > hi) return 0
            C_LO = lo; C_HI = hi; return 1
        }
        END {
            worst = 0; bad = 0; count = 0
            for (n = 1; n <= 2; n++) for (k = 1; k <= lines[n]; k++) {
                g = lg[n, k]; r = lr[n, k]
                if (bracket(n, g)) { lo = g + C_LO; hi = g + C_HI; width = C_HI - C_LO }
                else { lo = lh[n, k] - 1e6; hi = lh[n, k]; width = 1e6; unbounded++ }
                if (width > worst) worst = width
                if (lt[n, k] == "online") { count++; on[count] = lo; node[count] = n; res[count] = r; off[count] = -1; open[n, r] = count }
                else if ((n, r) in open) { off[open[n, r]] = hi; delete open[n, r] }
                printf "  n%d %-8s %-7s guest %10.3f ms  host [%9.1f, %9.1f] ms since launch (arrived %9.1f)\n", n, r, lt[n, k], g / 1000, (lo - base) / 1000, (hi - base) / 1000, (lh[n, k] - base) / 1000
            }
            for (i = 1; i <= count; i++) if (off[i] < 0) off[i] = (dead[node[i]] != "" ? dead[node[i]] : end)
            closest = 1e18
            for (i = 1; i <= count; i++) for (j = 1; j <= count; j++) {
                if (i == j || node[i] == node[j] || res[i] != res[j]) continue
                if (on[i] < off[j] && on[j] < off[i]) {
                    if (i > j) continue
                    bad = 1
                    printf "  OVERLAP %s: n%d [%.1f, %.1f] ms and n%d [%.1f, %.1f] ms\n", res[i], node[i], (on[i] - base) / 1000, (off[i] - base) / 1000, node[j], (on[j] - base) / 1000, (off[j] - base) / 1000
                } else if (on[j] >= off[i] && on[j] - off[i] < closest) closest = on[j] - off[i]
            }
            printf "  error bound: each line placed on the host clock within %.2f ms (widest offset bracket)%s\n", worst / 1000, unbounded ? "; some lines had no pong nearby and got a 1000 ms bound" : ""
            if (closest < 1e18) printf "  smallest gap between one node'"'"'s offline and the other'"'"'s online of a group: %.1f ms\n", closest / 1000
            printf "  overlap check: %s\n", bad ? "FAIL" : "PASS (no two nodes held a group at the same instant)"
            exit bad
        }' "$WORK"/n1.pings.txt "$WORK"/n2.pings.txt "$WORK"/n1.ev.log "$WORK"/n2.ev.log
}

# The merged timeline: host events, each node's cluster events (wp-ev) and resource lines, by
# host arrival time, in ms since the VMs were launched.
timeline() {
    {
        cat "$WORK/host.txt"
        for n in 1 2; do
            awk -v n="$n" '$2 == "wp-ev" { h = $1; g = $3; $1 = $2 = $3 = ""; text = $0; sub(/^ +/, "", text)
                                           if (!seen[g, text]++) printf "%s n%d (guest %.1f ms) %s\n", h, n, g / 1000, text }
                           / wp-init: (ready|wolfpack node exited)/ { h = $1; $1 = ""; printf "%s n%d%s\n", h, n, $0 }' \
                "$WORK/n$n.con.log"
            awk -v n="$n" '$3 ~ /^node=/ { printf "%s n%d (guest %.1f ms) %s %s (monitor event log)\n", $1, n, $2 / 1000, $4, $5 }' \
                "$WORK/n$n.ev.log"
        done
    } | sort -s -n -k1,1 | awk -v base="$BASE_US" '{ t = $1; $1 = ""; printf "  %9.1f ms%s\n", (t - base) / 1000, $0 }'
}

host_event() { echo "$(now_us) host: $*" >>"$WORK/host.txt"; }

# ---------------------------------------------------------------------------------------------
# Scenarios

form_cluster() {
    boot_both
    step "wait for the cluster to form (both nodes stabilized with members {1,2})"
    wait_for "membership {1,2} on both nodes" "$TIMEOUT" formed_after 0
    host_event "cluster formed"
    step "wait for groups 1 and 2 to come online"
    wait_for "both groups online, each on one node" "$TIMEOUT" both_groups_placed
    host_event "groups placed: n1 holds {$(groups_of 1)}, n2 holds {$(groups_of 2)}"
    log "formed; n1 holds {$(groups_of 1)}, n2 holds {$(groups_of 2)}"
}

scenario_basic() {
    prepare
    format_image direct
    BASE_US=$(now_us)
    : >"$WORK/host.txt"
    host_event "launch both VMs"
    form_cluster
    local owner survivor killed_at
    owner=$(owner_of 1)
    survivor=$((3 - owner))
    step "SIGKILL the QEMU of n$owner (owner of group 1)"
    killed_at=$(now_us)
    host_event "SIGKILL QEMU of n$owner (pid ${QEMU_PID[$owner]})"
    stop_vm "$owner"
    host_event "QEMU of n$owner reaped"
    step "wait for n$survivor to take group 1 over"
    wait_for "group 1 online on n$survivor" "$TIMEOUT" online_after "$survivor" 1 "$killed_at"
    host_event "group 1 online line from n$survivor arrived"
    sleep 1
    echo "timeline (ms since launch):"
    timeline
    echo "intervals and overlap check:"
    local verdict=0
    analyse || verdict=1
    takeover_report "$owner" "$survivor" "$killed_at"
    [ "$verdict" = 0 ] || fail "overlap check failed"
    echo "basic: PASS"
}

# Prints the takeover as the host saw it (SIGKILL → the online line arrived) and as the survivor
# saw it (its own CLOCK_MONOTONIC: peer declared silent → online line written).
takeover_report() {
    local owner=$1 survivor=$2 killed_at=$3
    awk -v killed="$killed_at" -v dead="${DEAD_AT[$owner]}" -v peer="$owner" -v survivor="$survivor" '
        FILENAME ~ /con.log/ && $2 == "wp-ev" && $1 >= killed && $0 ~ ("node " peer " silent") && !silent { silent = $3 }
        FILENAME ~ /ev.log/ && $4 == "resource=group-1" && $5 == "online" && $1 >= killed && !online { online = $2; arrived = $1 }
        END {
            printf "takeover (host): SIGKILL -> group 1 online line arrived: %.0f ms (QEMU reaped %.0f ms after the kill)\n", (arrived - killed) / 1000, (dead - killed) / 1000
            if (silent) printf "takeover (inside n%s, its CLOCK_MONOTONIC): peer declared silent -> group 1 online written: %.0f ms\n", survivor, (online - silent) / 1000
            printf "takeover_ms=%.0f\n", (arrived - killed) / 1000
        }' "$WORK/n$survivor.con.log" "$WORK/n$survivor.ev.log"
}

scenario_partition() {
    local io=${1:-direct}
    # The real partition runs catalog groups, one preferring each node, so the losing side holds
    # a group when the link is cut and must stop it. The mmap control keeps the built-in test
    # groups: with stale reads each node forms alone, and only built-in groups exist without a
    # shared catalog.
    if [ "$io" = mmap ]; then GROUP_MODE=test; else GROUP_MODE=catalog; fi
    prepare
    format_image "$io"
    BASE_US=$(now_us)
    : >"$WORK/host.txt"
    host_event "launch both VMs (disk-io $io)"
    if [ "$io" = mmap ]; then
        # Stale page-cache reads may break the cluster before the cut: each node can miss the
        # other's quorum record and form alone. That is the hazard this control shows.
        boot_both
        step "wait for the cluster to form (expected to go wrong with mmap)"
        if ! wait_until "membership {1,2} on both nodes, groups placed" "$TIMEOUT" formed_and_placed; then
            host_event "no two-node cluster: n1 holds {$(groups_of 1)}, n2 holds {$(groups_of 2)}"
            echo "timeline (ms since launch):"
            timeline
            echo "intervals and overlap check:"
            if ! analyse; then
                echo "mmap-control: PASS (the hazard showed, as expected with --disk-io mmap): the nodes did not form one cluster and both held the groups at once"
                return 0
            fi
            fail "mmap-control: $WAIT_WHY, but without an overlap"
        fi
    else
        form_cluster
        step "wait for each node to hold the group that prefers it (g1 on n1, g2 on n2)"
        wait_for "n1 holding group 1 and n2 holding group 2" "$TIMEOUT" each_holds_its_own
        host_event "before the cut: n1 holds {$(groups_of 1)}, n2 holds {$(groups_of 2)}"
    fi
    step "cut the link (set_link n0 off on both VMs' monitors)"
    local cut_at
    cut_at=$(now_us)
    hmp 1 set_link n0 off
    hmp 2 set_link n0 off
    host_event "set_link n0 off on n1 and n2"
    step "wait for one side to hold both groups and the other none"
    local outcome=0
    if ! wait_until "one node holding groups 1 and 2, the other none" "$TIMEOUT" one_side_holds; then
        outcome=1
        echo "wpqemu: $WAIT_WHY" >&2
    fi
    local winner=""
    [ "$(groups_of 1)" = "1 2" ] && winner=1
    [ "$(groups_of 2)" = "1 2" ] && winner=2
    host_event "after the cut: n1 holds {$(groups_of 1)}, n2 holds {$(groups_of 2)}"
    sleep 3
    host_event "3 s later: n1 holds {$(groups_of 1)}, n2 holds {$(groups_of 2)}"
    local stable=1
    [ -n "$winner" ] && one_side_holds || stable=0
    step "restore the link (set_link n0 on)"
    local restore_at
    restore_at=$(now_us)
    hmp 1 set_link n0 on
    hmp 2 set_link n0 on
    host_event "set_link n0 on on n1 and n2"
    step "wait for the cluster to re-form"
    local reformed=1
    if wait_until "membership {1,2} again" "$TIMEOUT" formed_after "$restore_at"; then
        host_event "cluster re-formed"
        sleep 2
        host_event "after re-forming: n1 holds {$(groups_of 1)}, n2 holds {$(groups_of 2)}"
    else
        reformed=0
        echo "wpqemu: $WAIT_WHY" >&2
    fi
    echo "timeline (ms since launch):"
    timeline
    echo "intervals and overlap check:"
    local overlap=0
    analyse || overlap=1
    local problems=()
    [ "$outcome" = 0 ] && [ "$stable" = 1 ] || problems+=("not exactly one side kept the groups (n1 {$(groups_of 1)}, n2 {$(groups_of 2)})")
    [ "$overlap" = 0 ] || problems+=("two nodes held a group at once")
    [ "$reformed" = 1 ] || problems+=("the cluster did not re-form after the link came back")
    if [ "$io" = mmap ]; then
        if ((${#problems[@]})); then
            echo "mmap-control: PASS (the hazard showed, as expected with --disk-io mmap): ${problems[*]}"
            return 0
        fi
        fail "mmap-control: the mmap run behaved correctly this time: the hazard did not show"
    fi
    ((${#problems[@]} == 0)) || fail "${problems[*]}"
    echo "partition: PASS (n$((3 - winner)) stopped the group it held, n$winner held both without overlap; the cluster re-formed)"
}
formed_and_placed() { formed_after 0 && both_groups_placed; }

# Host arrival (µs) of VM n's first QMP event $3 (default RESET) after host time $2, or nothing.
reset_after() {
    awk -v after="$2" -v event="\"event\": \"${3:-RESET}\"" 'index($0, event) && $1 >= after { print $1; exit }' \
        "$WORK/n$1.qmp.log" 2>/dev/null
}
qmp_line_at() { awk -v t="$2" '$1 == t' "$WORK/n$1.qmp.log" | cut -d' ' -f2- | tr -d '\r'; }
was_reset_after() { [ -n "$(reset_after "$1" "$2")" ]; }
# A console line of VM n after host time $2 that only a fresh boot prints.
booted_after() {
    awk -v after="$2" '$1 >= after && / wp-init: up / { found = 1 } END { exit !found }' "$WORK/n$1.con.log" 2>/dev/null
}
frozen() { grep -q ' wp-init: froze wolfpack' "$WORK/n$1.con.log" 2>/dev/null; }
watchdog_line() { grep -m 1 -o 'watchdog /dev/watchdog0: timeout.*' "$WORK/n$1.con.log" 2>/dev/null; }
has_watchdog_line() { grep -q 'watchdog /dev/watchdog0: timeout' "$WORK/n$1.con.log" 2>/dev/null; }

# watchdog: each guest's node feeds /dev/watchdog0 (its monitor, on each ping); every wolfpack
# process of group 1's owner is SIGSTOPped, so nothing feeds it: the watchdog must reset that
# guest before its lease ends, and the other node takes group 1 over with no overlap.
# control: the same without --watchdog: no reset, and the frozen guest still runs group 1's
# process after the other started it (the overlap the watchdog prevents).
scenario_watchdog() {
    local mode=$1
    KERNEL_FLAVOUR=${TB_KERNEL:-generic}
    WANT_WATCHDOG=1
    if [ "$mode" = watchdog ]; then VM_WATCHDOG=1; else VM_WATCHDOG=0; fi
    prepare
    format_image direct
    local fence
    fence=$(echo "$TIMING" | cut -d, -f4)
    BASE_US=$(now_us)
    : >"$WORK/host.txt"
    host_event "launch both VMs (watchdog $WATCHDOG_DRIVER, fed by wolfpack: $VM_WATCHDOG)"
    form_cluster
    local owner survivor frozen_at reset_at
    owner=$(owner_of 1)
    survivor=$((3 - owner))
    if [ "$VM_WATCHDOG" = 1 ]; then
        step "check that n$owner's node opened its watchdog"
        wait_for "n$owner's 'watchdog /dev/watchdog0: timeout' line" "$TIMEOUT" has_watchdog_line "$owner"
        log "n$owner: $(watchdog_line "$owner")"
    fi
    step "SIGSTOP every wolfpack process of n$owner (owner of group 1)"
    frozen_at=$(now_us)
    echo freeze >&$((5 + owner))
    host_event "freeze sent to n$owner"
    wait_for "n$owner to say it froze wolfpack" "$TIMEOUT" frozen "$owner"
    host_event "n$owner: $(grep -m 1 -o 'froze wolfpack.*' "$WORK/n$owner.con.log")"
    step "wait for n$survivor to take group 1 over"
    wait_for "group 1 online on n$survivor" "$TIMEOUT" online_after "$survivor" 1 "$frozen_at"
    host_event "group 1 online line from n$survivor arrived"
    local takeover_at
    takeover_at=$(awk -v after="$frozen_at" '$4 == "resource=group-1" && $5 == "online" && $1 >= after { print $1; exit }' "$WORK/n$survivor.ev.log")
    if [ "$mode" = watchdog ]; then
        step "wait for the watchdog to reset n$owner (QMP RESET event)"
        wait_for "a RESET event of n$owner" "$TIMEOUT" was_reset_after "$owner" "$frozen_at"
        reset_at=$(reset_after "$owner" "$frozen_at")
        DEAD_AT[$owner]=$reset_at
        if [ "$WATCHDOG_DRIVER" = i6300esb ]; then
            # QEMU's watchdog says it acted: the reset is the watchdog's, not the guest's own.
            local fired_at
            fired_at=$(reset_after "$owner" "$frozen_at" WATCHDOG)
            [ -n "$fired_at" ] || fail "n$owner was reset, but QEMU reported no WATCHDOG event"
            echo "$fired_at host: QMP event of n$owner: $(qmp_line_at "$owner" "$fired_at")" >>"$WORK/host.txt"
        fi
        echo "$reset_at host: QMP event of n$owner: $(qmp_line_at "$owner" "$reset_at")" >>"$WORK/host.txt"
        step "wait for n$owner to boot again"
        wait_for "n$owner's init to run again" "$BOOT_TIMEOUT" booted_after "$owner" "$reset_at"
        host_event "n$owner booted again (init runs)"
    else
        step "check for $((fence / 1000 + 3)) s that n$owner is not reset"
        sleep $((fence / 1000 + 3))
        was_reset_after "$owner" "$frozen_at" && fail "n$owner was reset although no watchdog was fed"
        host_event "n$owner not reset $((fence / 1000 + 3)) s after the takeover"
    fi
    sleep 1
    echo "timeline (ms since launch):"
    timeline
    echo "intervals and overlap check:"
    local overlap=0
    analyse || overlap=1
    if [ "$mode" = control ]; then
        [ "$overlap" = 1 ] || fail "watchdog-control: the frozen guest did not overlap with the takeover (the hazard did not show)"
        echo "watchdog-control: PASS (the hazard showed, as expected without a watchdog): n$owner, frozen, was not reset and still ran group 1 when n$survivor started it $(((takeover_at - frozen_at) / 1000)) ms after the freeze"
        return 0
    fi
    [ "$overlap" = 0 ] || fail "two nodes held a group at once"
    [ "$reset_at" -le "$takeover_at" ] || fail "n$survivor started group 1 before n$owner was reset"
    echo "watchdog ($WATCHDOG_DRIVER, host clock): freeze sent -> RESET event arrived $(((reset_at - frozen_at) / 1000)) ms; freeze sent -> group 1 online line from n$survivor $(((takeover_at - frozen_at) / 1000)) ms"
    echo "watchdog: PASS (the $WATCHDOG_DRIVER watchdog reset n$owner $(((reset_at - frozen_at) / 1000)) ms after the host sent the freeze; n$survivor took group 1 over $(((takeover_at - reset_at) / 1000)) ms after the reset; no overlap)"
}
each_holds_its_own() { [ "$(groups_of 1)" = 1 ] && [ "$(groups_of 2)" = 2 ]; }
one_side_holds() {
    local a b
    a=$(groups_of 1)
    b=$(groups_of 2)
    { [ "$a" = "1 2" ] && [ -z "$b" ]; } || { [ "$b" = "1 2" ] && [ -z "$a" ]; }
}

usage() { sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; }

main() {
    local command=${1:-}
    case "$command" in
    setup)
        install_packages
        fetch_kernel
        ;;
    basic) scenario_basic ;;
    partition) scenario_partition direct ;;
    mmap-control) scenario_partition mmap ;;
    watchdog) scenario_watchdog watchdog ;;
    watchdog-control) scenario_watchdog control ;;
    all)
        local status=0
        for scenario in basic partition mmap-control watchdog watchdog-control; do
            "$0" "$scenario" || status=1
        done
        exit "$status"
        ;;
    ci)
        local attempt
        for attempt in 1 2; do
            log "ci: basic scenario, attempt $attempt of 2 (timeout ${TB_CI_TIMEOUT:-600}s)"
            if timeout -k 10 "${TB_CI_TIMEOUT:-600}" "$0" basic; then
                exit 0
            fi
        done
        exit 1
        ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
