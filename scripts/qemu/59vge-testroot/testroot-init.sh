#!/bin/sh
# /sbin/init of the throw-away real root: report what the initrd left, optionally serve as
# vsock-guest-exec.service would, then power off. Markers: "VGE-TESTROOT: ...".
export PATH=/bin:/usr/bin
# switch_root moved /proc, /sys, /dev and /run over; mount what is missing.
[ -d /proc/self ] || mount -t proc proc /proc
echo "VGE-TESTROOT: real root reached"
if [ -f /run/vsock-guest-exec/disposable.status ]; then
    echo "VGE-TESTROOT: disposable.status=$(cat /run/vsock-guest-exec/disposable.status)"
fi
for f in /etc/vge-test/*; do
    [ -f "$f" ] && echo "VGE-TESTROOT: file $f: $(cat "$f")"
done
read -r cmdline < /proc/cmdline
for arg in $cmdline; do
    case $arg in
        vgetest.serve=*)
            # What vsock-guest-exec.service runs on an installed system (port from the argument).
            port=${arg#vgetest.serve=}
            echo "VGE-TESTROOT: starting the agent as the service would (port $port)"
            /usr/bin/vsock_guest_exec --retry 30 "2:$port" persistent
            echo "VGE-TESTROOT: agent exited $?"
            ;;
    esac
done
sync
echo "VGE-TESTROOT: poweroff"
poweroff -f
