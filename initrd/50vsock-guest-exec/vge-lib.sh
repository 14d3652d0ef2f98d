#!/bin/sh
# Shared by the vsock-guest-exec hooks. Sourced by dracut's init after dracut-lib.sh (getarg,
# getargbool, warn, die), so: no `exit`, and every variable is prefixed VGE_/_vge_.
# shellcheck disable=SC2034 # the VGE_ variables are read by the hooks that source this file

VGE_BIN=/usr/bin/vsock_guest_exec
VGE_RUN=/run/vsock-guest-exec

# Progress lines on the console, stamped with the uptime (boot-time measurements read them).
vge_say() {
    read -r _vge_up _vge_idle < /proc/uptime
    echo "vsock-guest-exec: [$_vge_up] $*" >&2
    unset _vge_up _vge_idle
}

# Reads the rd.vge.* kernel arguments into VGE_MODE, VGE_CID, VGE_PORT, VGE_RETRY, VGE_ONERROR,
# VGE_HOLD, VGE_ALLOWCID, VGE_RECONNECT (1 or empty), VGE_VERBOSE, VGE_TOKENFILE (a path or empty) and
# VGE_HANDSHAKE (seconds or empty). Numbers, CID lists and the token file are checked by the agent itself
# (exit 2 on a bad one).
vge_config() {
    VGE_MODE=$(getarg rd.vge.mode=) || VGE_MODE=off
    case $VGE_MODE in
        off | disposable | persistent | listen) ;;
        *)
            warn "vsock-guest-exec: rd.vge.mode=$VGE_MODE is not off, disposable, persistent or listen; treating it as off"
            VGE_MODE=off
            ;;
    esac
    VGE_CID=$(getarg rd.vge.cid=) || VGE_CID=2
    VGE_PORT=$(getarg rd.vge.port=) || VGE_PORT=1024
    VGE_RETRY=$(getarg rd.vge.retry=) || VGE_RETRY=30
    VGE_HOLD=$(getarg rd.vge.hold=) || VGE_HOLD=0
    VGE_ONERROR=$(getarg rd.vge.onerror=) || VGE_ONERROR=fail
    case $VGE_ONERROR in
        fail | continue) ;;
        *)
            warn "vsock-guest-exec: rd.vge.onerror=$VGE_ONERROR is not fail or continue; using fail"
            VGE_ONERROR=fail
            ;;
    esac
    VGE_ALLOWCID=$(getarg rd.vge.allowcid=) || VGE_ALLOWCID=
    VGE_RECONNECT=
    if getargbool 0 rd.vge.reconnect; then VGE_RECONNECT=1; fi
    VGE_VERBOSE=
    if getargbool 0 rd.vge.verbose; then VGE_VERBOSE=--verbose; fi
    # Only the path is on the kernel command line (readable by anyone in /proc/cmdline); the token
    # itself is in that file, inside the initramfs.
    VGE_TOKENFILE=$(getarg rd.vge.token_file=) || VGE_TOKENFILE=
    # Empty: the agent's own default (--handshake-timeout).
    VGE_HANDSHAKE=$(getarg rd.vge.handshake_timeout=) || VGE_HANDSHAKE=
}

# Warns about an rd.vge.* argument that the mode in effect does not use (the agent would refuse the
# option outright, exit 2, so it is not passed on). $1: the argument, $2: the modes that use it.
vge_unused() {
    warn "vsock-guest-exec: $1 applies to rd.vge.mode=$2 only; ignored with rd.vge.mode=$VGE_MODE"
}

# The CPU floor of the x64 agent: Bun's runtime needs x86-64-v2 (its baseline build targets Nehalem:
# SSE4.2, POPCNT and the rest of the level below). On QEMU's default model (qemu64) the agent dies with
# "Illegal instruction" before main and the host just never hears from the guest. Prints the missing
# /proc/cpuinfo flags; nothing on a CPU that has them all, or on one that is not x86 (no "flags" line:
# arm64 lists "Features", and the arm64 agent has no such floor).
vge_cpu_missing() {
    _vge_flags=
    while IFS= read -r _vge_line; do
        case $_vge_line in
            flags*:*)
                _vge_flags=" ${_vge_line#*:} "
                break
                ;;
        esac
    done < /proc/cpuinfo
    if [ -n "$_vge_flags" ]; then
        _vge_missing=
        for _vge_f in ssse3 sse4_1 sse4_2 popcnt cx16 lahf_lm; do
            case $_vge_flags in
                *" $_vge_f "*) ;;
                *) _vge_missing="$_vge_missing $_vge_f" ;;
            esac
        done
        echo "${_vge_missing# }"
    fi
    unset _vge_flags _vge_line _vge_f _vge_missing
}

# True when the agent can run on this CPU. Otherwise one console line says what is missing and what to
# do, and rd.vge.onerror decides: fail (default) stops the boot with die, continue boots on without the
# agent (false: the caller skips it).
vge_cpu_ok() {
    _vge_missing=$(vge_cpu_missing)
    [ -n "$_vge_missing" ] || return 0
    _vge_why="vsock-guest-exec: the CPU lacks $_vge_missing (x86-64-v2), which the agent needs (it would die with \"Illegal instruction\"): give the guest a newer CPU model, e.g. QEMU -cpu host with KVM or -cpu max under TCG"
    unset _vge_missing
    if [ "$VGE_ONERROR" = continue ]; then
        warn "$_vge_why; booting on without the agent (rd.vge.onerror=continue)"
        unset _vge_why
        return 1
    fi
    warn "$_vge_why; stopping the boot (rd.vge.onerror=fail)"
    unset _vge_why
    die "vsock-guest-exec: CPU below x86-64-v2, the agent cannot run"
    return 1
}

# rd.vge.agent=DEVICE: the agent is on a disk (a squashfs image from scripts/build-agent-image.sh, e.g.
# /dev/vdb), not in the initramfs, which then fits a 128 MiB guest. Mounted read-only once (the hooks of
# every mode call this) at $VGE_RUN/agent: RAM holds only the agent's pages it touches, clean, so the
# kernel may drop them and read them again; vge-stop.sh unmounts it before switch_root. Sets VGE_BIN.
vge_agent_mount() {
    _vge_dev=$(getarg rd.vge.agent=) || _vge_dev=
    if [ -n "$_vge_dev" ]; then
        if [ ! -x "$VGE_RUN/agent/vsock_guest_exec" ]; then
            modprobe -a virtio_blk squashfs || warn "vsock-guest-exec: modprobe of virtio_blk and squashfs failed"
            # No udev yet in pre-udev: devtmpfs makes the node once the driver has probed the disk.
            _vge_wait=100
            while [ ! -b "$_vge_dev" ] && [ "$_vge_wait" -gt 0 ]; do
                sleep 0.1
                _vge_wait=$((_vge_wait - 1))
            done
            mkdir -p "$VGE_RUN/agent"
            mount -t squashfs -o ro "$_vge_dev" "$VGE_RUN/agent" \
                || warn "vsock-guest-exec: cannot mount rd.vge.agent=$_vge_dev (a squashfs image from scripts/build-agent-image.sh)"
        fi
        VGE_BIN=$VGE_RUN/agent/vsock_guest_exec
    fi
    [ -x "$VGE_BIN" ] || warn "vsock-guest-exec: no agent at $VGE_BIN${_vge_dev:+ (rd.vge.agent=$_vge_dev)}; an image built with --agent-on-disk needs rd.vge.agent=DEVICE"
    unset _vge_dev _vge_wait
}

# The virtio-vsock transport, in dependency order (modprobe resolves the rest from modules.dep).
# virtio_pci first: without the bus driver the transport finds no device.
vge_load_modules() {
    vge_say "loading the virtio-vsock modules"
    modprobe -a virtio_pci vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport \
        || warn "vsock-guest-exec: modprobe of the virtio-vsock modules failed; the agent will likely not connect"
}

# True while process $1 runs. A zombie counts as gone: an agent that ended while dracut's init (its
# parent) had not reaped it yet still answers kill -0.
vge_alive() {
    kill -0 "$1" 2> /dev/null || return 1
    read -r _vge_p _vge_comm _vge_state _vge_rest < "/proc/$1/stat" || return 1
    [ "$_vge_state" != Z ]
}

# True while the initrd's background agent $1 holds switch_root: it runs and the host has not
# created $VGE_RUN/release (the way to end the hold for an agent that never ends by itself).
vge_holding() {
    vge_alive "$1" && [ ! -e "$VGE_RUN/release" ]
}

# Containment (rd.vge.contain, default on; SECURITY.md "Contained executions"): prints the agent's options.
# Each execution gets a cgroup v2 leaf under /sys/fs/cgroup/vge (cgroup2 is mounted here if nothing has
# mounted it yet), and the agent's OOM score is -1000 (--protect). With rd.vge.contain=0: nothing.
# Under a systemd initrd the cgroup tree is systemd's: --protect only (not tested there yet).
vge_contain_opts() {
    getargbool 1 rd.vge.contain || return 0
    if [ -d /run/systemd/system ]; then
        echo "--protect"
        return 0
    fi
    if [ ! -e /sys/fs/cgroup/cgroup.procs ]; then
        mkdir -p /sys/fs/cgroup
        mount -t cgroup2 none /sys/fs/cgroup 2> /dev/null \
            || warn "vsock-guest-exec: cannot mount cgroup2 on /sys/fs/cgroup; executions are not contained (--protect only)"
    fi
    if [ -e /sys/fs/cgroup/cgroup.procs ]; then
        echo "--cgroup /sys/fs/cgroup/vge --protect"
    else
        echo "--protect"
    fi
}
