#!/bin/sh
# shellcheck disable=SC2154 # root and NEWROOT are set by dracut's init
# mount hook: build the throw-away real root on tmpfs at $NEWROOT.
# rd.vgetest.agent=1 also copies the agent and its libraries into it, for the init there to run
# the agent the way vsock-guest-exec.service would on an installed system.
if [ "$root" = vge-testroot ] && ! ismounted "$NEWROOT"; then
    mount -t tmpfs -o mode=0755 vge-testroot "$NEWROOT"
    mkdir -p "$NEWROOT/bin" "$NEWROOT/sbin" "$NEWROOT/etc" "$NEWROOT/proc" "$NEWROOT/sys" \
        "$NEWROOT/dev" "$NEWROOT/run" "$NEWROOT/tmp" "$NEWROOT/usr/bin" "$NEWROOT/usr/lib"
    cp /usr/lib/vge-testroot/busybox "$NEWROOT/bin/busybox"
    # One process, not one ln per applet: every fork costs milliseconds under TCG.
    /usr/lib/vge-testroot/busybox chroot "$NEWROOT" /bin/busybox --install -s /bin
    cp /usr/lib/vge-testroot/init "$NEWROOT/sbin/init"
    chmod 0755 "$NEWROOT/sbin/init"
    if getargbool 0 rd.vgetest.agent; then
        cp /usr/bin/vsock_guest_exec "$NEWROOT/usr/bin/"
        cp -a /usr/lib/x86_64-linux-gnu "$NEWROOT/usr/lib/"
        cp -a /usr/lib64 "$NEWROOT/usr/"
        ln -s usr/lib64 "$NEWROOT/lib64"
        ln -s usr/lib "$NEWROOT/lib"
    fi
fi
