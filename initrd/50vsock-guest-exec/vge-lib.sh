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
# VGE_HOLD, VGE_ALLOWCID, VGE_RECONNECT (1 or empty), VGE_VERBOSE and VGE_TOKENFILE (a path or empty).
# Numbers, CID lists and the token file are checked by the agent itself (exit 2 on a bad one).
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
}

# Warns about an rd.vge.* argument that the mode in effect does not use (the agent would refuse the
# option outright, exit 2, so it is not passed on). $1: the argument, $2: the modes that use it.
vge_unused() {
    warn "vsock-guest-exec: $1 applies to rd.vge.mode=$2 only; ignored with rd.vge.mode=$VGE_MODE"
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
