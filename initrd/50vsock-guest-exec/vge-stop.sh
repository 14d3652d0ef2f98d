#!/bin/sh
# cleanup hook (just before switch_root): end the initrd's persistent agent. It must not outlive the
# initrd: its /bin/sh and every other file it runs vanish when switch_root empties the initramfs.
# It gets rd.vge.hold seconds (default 0) to finish by itself, i.e. for the host to close the
# session; then SIGTERM, and SIGKILL 2 s later. In the real root, vsock-guest-exec.service dials anew.

# shellcheck source=SCRIPTDIR/vge-lib.sh
. /lib/vge-lib.sh

if [ -f "$VGE_RUN/agent.pid" ]; then
    vge_config
    read -r _vge_pid < "$VGE_RUN/agent.pid"
    rm -f "$VGE_RUN/agent.pid"
    # Tenths of a second: sleep 0.1 is in bash's and busybox's sleep.
    _vge_wait=$((VGE_HOLD * 10))
    if [ "$_vge_wait" -gt 0 ] && vge_alive "$_vge_pid"; then
        vge_say "persistent: holding switch_root up to ${VGE_HOLD}s for the host to close the session"
        while [ "$_vge_wait" -gt 0 ] && vge_alive "$_vge_pid"; do
            sleep 0.1
            _vge_wait=$((_vge_wait - 1))
        done
    fi
    if vge_alive "$_vge_pid"; then
        vge_say "persistent: stopping the initrd's agent (pid $_vge_pid) before switch_root"
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
    vge_say "persistent: the initrd's session ended"
    unset _vge_pid _vge_wait
fi
