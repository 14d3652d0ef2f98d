#!/bin/sh
# pre-udev hook: in rd.vge.mode=persistent, start the agent in the background for the whole initrd.
# It serves length-prefixed commands with the console as their stdio; the cleanup hook (vge-stop.sh)
# ends it before switch_root.

# shellcheck source=SCRIPTDIR/vge-lib.sh
. /lib/vge-lib.sh
vge_config

if [ "$VGE_MODE" = persistent ]; then
    vge_load_modules
    mkdir -p "$VGE_RUN"
    vge_say "persistent: dialing CID $VGE_CID port $VGE_PORT (retry ${VGE_RETRY}s) in the background"
    # shellcheck disable=SC2086 # VGE_VERBOSE is empty or one word
    "$VGE_BIN" --retry "$VGE_RETRY" $VGE_VERBOSE "$VGE_CID:$VGE_PORT" persistent \
        < /dev/console > /dev/console 2>&1 &
    echo $! > "$VGE_RUN/agent.pid"
fi
