#!/bin/sh
# pre-pivot hook: in rd.vge.mode=disposable, dial the host, run its one command and wait for it.
# The boot does not go on until the command has finished. Its exit status is kept in
# /run/vsock-guest-exec/disposable.status, which the real root sees as well (/run is carried over).
# On failure: rd.vge.onerror=fail (default) stops the boot with dracut's die; =continue warns and boots.

# shellcheck source=SCRIPTDIR/vge-lib.sh
. /lib/vge-lib.sh
vge_config

if [ "$VGE_MODE" = disposable ] && ! vge_cpu_ok; then
    # rd.vge.onerror=continue: no command ran; the real root sees why.
    mkdir -p "$VGE_RUN"
    echo cpu > "$VGE_RUN/disposable.status"
elif [ "$VGE_MODE" = disposable ]; then
    [ -z "$VGE_RECONNECT" ] || vge_unused rd.vge.reconnect persistent
    [ -z "$VGE_ALLOWCID" ] || vge_unused rd.vge.allowcid listen
    vge_load_modules
    mkdir -p "$VGE_RUN"
    vge_agent_mount
    vge_say "disposable: dialing CID $VGE_CID port $VGE_PORT (retry ${VGE_RETRY}s); boot waits for the host's command"
    # NEWROOT (the mounted real root) is exported by dracut's init: the command may write into it.
    # shellcheck disable=SC2086 # VGE_VERBOSE is empty or one word
    "$VGE_BIN" --retry "$VGE_RETRY" ${VGE_TOKENFILE:+--token-file "$VGE_TOKENFILE"} ${VGE_HANDSHAKE:+--handshake-timeout "$VGE_HANDSHAKE"} $VGE_VERBOSE "$VGE_CID:$VGE_PORT"
    _vge_rc=$?
    echo "$_vge_rc" > "$VGE_RUN/disposable.status"
    if [ "$_vge_rc" = 0 ]; then
        vge_say "disposable: command succeeded (exit 0)"
    elif [ "$VGE_ONERROR" = continue ]; then
        warn "vsock-guest-exec: disposable: command FAILED (exit $_vge_rc); booting on (rd.vge.onerror=continue)"
    else
        warn "vsock-guest-exec: disposable: command FAILED (exit $_vge_rc); stopping the boot (rd.vge.onerror=fail)"
        die "vsock-guest-exec: provisioning failed (exit $_vge_rc)"
    fi
    unset _vge_rc
fi
