#!/bin/sh
# cleanup hook (just before switch_root): end the initrd's background agent (rd.vge.mode=persistent or
# listen). It must not outlive the initrd: its /bin/sh and every other file it runs vanish when
# switch_root empties the initramfs. rd.vge.hold=SECONDS (default 0) first lets the host finish: the
# hold ends when the agent has ended by itself (persistent without rd.vge.reconnect: the host closed
# the session) or when the host has created /run/vsock-guest-exec/release (the only way for an agent
# that never ends by itself: listen, or reconnect). Then SIGTERM, and SIGKILL 2 s later. In the real
# root, vsock-guest-exec.service starts a new agent.

# shellcheck source=SCRIPTDIR/vge-lib.sh
. /lib/vge-lib.sh

if [ -f "$VGE_RUN/agent.pid" ]; then
    vge_config
    read -r _vge_pid < "$VGE_RUN/agent.pid"
    rm -f "$VGE_RUN/agent.pid"
    # Tenths of a second: sleep 0.1 is in bash's and busybox's sleep.
    _vge_wait=$((VGE_HOLD * 10))
    if [ "$_vge_wait" -gt 0 ]; then
        if vge_holding "$_vge_pid"; then
            if [ "$VGE_MODE" = persistent ] && [ -z "$VGE_RECONNECT" ]; then
                _vge_until="the host closes the session or creates $VGE_RUN/release"
            else
                _vge_until="the host creates $VGE_RUN/release"
            fi
            vge_say "$VGE_MODE: holding switch_root up to ${VGE_HOLD}s, until $_vge_until"
            while [ "$_vge_wait" -gt 0 ] && vge_holding "$_vge_pid"; do
                sleep 0.1
                _vge_wait=$((_vge_wait - 1))
            done
        fi
        # The host may have released the boot before it got here: say so all the same.
        if [ -e "$VGE_RUN/release" ]; then
            vge_say "$VGE_MODE: released by the host ($VGE_RUN/release)"
        elif vge_alive "$_vge_pid"; then
            vge_say "$VGE_MODE: rd.vge.hold=${VGE_HOLD}s is over"
        fi
    fi
    if vge_alive "$_vge_pid"; then
        vge_say "$VGE_MODE: stopping the initrd's agent (pid $_vge_pid) before switch_root"
        kill -TERM "$_vge_pid" 2> /dev/null
        _vge_wait=20
        while [ "$_vge_wait" -gt 0 ] && vge_alive "$_vge_pid"; do
            sleep 0.1
            _vge_wait=$((_vge_wait - 1))
        done
        kill -KILL "$_vge_pid" 2> /dev/null
    fi
    # Reap it if it is our child (non-systemd init); harmless otherwise.
    wait "$_vge_pid" 2> /dev/null
    if [ "$VGE_MODE" = listen ]; then
        vge_say "listen: the initrd's agent ended; hosts dialing in now reach the real root's agent, if any"
    else
        vge_say "persistent: the initrd's session ended"
    fi
    unset _vge_pid _vge_wait _vge_until
fi

# rd.vge.agent: nothing of the initrd runs from the agent's disk any more; the real root does not inherit
# the mount (/run is carried over) and the disk is free for it.
if [ -d "$VGE_RUN/agent" ] && umount "$VGE_RUN/agent" 2> /dev/null; then
    vge_say "unmounted the agent's disk"
fi
