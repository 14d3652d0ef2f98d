#!/bin/sh
# pre-udev hook: in rd.vge.mode=persistent or listen, start the agent in the background for the whole
# initrd, console as its stdio; the cleanup hook (vge-stop.sh) ends it before switch_root.
#   persistent: the agent dials the host and serves it (rd.vge.reconnect: dials again whenever the
#               host goes away, so a restarted host is served again);
#   listen:     the agent listens on rd.vge.port and serves every host that dials in (QEMU's AF_VSOCK
#               connect, Firecracker's CONNECT PORT) from a CID in rd.vge.allowcid (default 2).
# Both serve protocol v2 to hosts that speak it and the original persistent format to the others.

# shellcheck source=SCRIPTDIR/vge-lib.sh
. /lib/vge-lib.sh
vge_config

case $VGE_MODE in
    persistent | listen)
        # No agent on a CPU it cannot run on (rd.vge.onerror: stop the boot, or boot on without it).
        vge_cpu_ok || VGE_MODE=off
        ;;
esac

case $VGE_MODE in
    persistent)
        [ -z "$VGE_ALLOWCID" ] || vge_unused rd.vge.allowcid listen
        vge_load_modules
        mkdir -p "$VGE_RUN"
        vge_agent_mount
        vge_say "persistent: dialing CID $VGE_CID port $VGE_PORT (retry ${VGE_RETRY}s${VGE_RECONNECT:+, again whenever the host goes away}) in the background"
        VGE_CONTAIN=$(vge_contain_opts)
        # shellcheck disable=SC2086 # VGE_VERBOSE is empty or one word, VGE_CONTAIN a word list
        "$VGE_BIN" $VGE_CONTAIN --retry "$VGE_RETRY" ${VGE_RECONNECT:+--reconnect} ${VGE_TOKENFILE:+--token-file "$VGE_TOKENFILE"} ${VGE_HANDSHAKE:+--handshake-timeout "$VGE_HANDSHAKE"} $VGE_VERBOSE "$VGE_CID:$VGE_PORT" persistent \
            < /dev/console > /dev/console 2>&1 &
        echo $! > "$VGE_RUN/agent.pid"
        ;;
    listen)
        # The agent refuses --reconnect with --listen: hosts come back by dialing in again anyway.
        [ -z "$VGE_RECONNECT" ] || vge_unused rd.vge.reconnect persistent
        vge_load_modules
        mkdir -p "$VGE_RUN"
        vge_agent_mount
        vge_say "listen: listening on port $VGE_PORT for CID ${VGE_ALLOWCID:-2} in the background"
        VGE_CONTAIN=$(vge_contain_opts)
        # shellcheck disable=SC2086 # VGE_VERBOSE is empty or one word, VGE_CONTAIN a word list
        "$VGE_BIN" $VGE_CONTAIN --listen ${VGE_ALLOWCID:+"--allow-cid=$VGE_ALLOWCID"} ${VGE_TOKENFILE:+--token-file "$VGE_TOKENFILE"} ${VGE_HANDSHAKE:+--handshake-timeout "$VGE_HANDSHAKE"} $VGE_VERBOSE ":$VGE_PORT" persistent \
            < /dev/console > /dev/console 2>&1 &
        echo $! > "$VGE_RUN/agent.pid"
        ;;
esac
