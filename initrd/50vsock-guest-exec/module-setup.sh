#!/bin/bash
# shellcheck disable=SC2154 # moddir and do_strip are set by dracut
# dracut module "vsock-guest-exec": runs the vsock_guest_exec agent from the initrd, so that the host
# can provision the guest (disposable mode, boot waits for the command) or drive it (persistent mode:
# the agent dials the host; listen mode: the host dials the agent) over AF_VSOCK. Kernel arguments
# (rd.vge.*) and the boot flow are described in initrd/README.md.
#
# Build-time input: VSOCK_GUEST_EXEC_BIN, the agent to put into the image (default /usr/bin/vsock_guest_exec).
# VSOCK_GUEST_EXEC_ON_DISK=1: the agent stays out of the image (only the libraries it links to, and the
# virtio_blk and squashfs modules, go in); it is run from a disk at boot, rd.vge.agent=DEVICE, which is
# how the image fits a 128 MiB guest (initrd/README.md "Small guests").
# The agent is a `bun build --compile` executable: stripping it removes the embedded program, so the
# image must be built with --nostrip; install() refuses otherwise.

# called by dracut
check() {
    local _bin="${VSOCK_GUEST_EXEC_BIN:-/usr/bin/vsock_guest_exec}"
    if [[ ! -x $_bin ]]; then
        derror "vsock-guest-exec: agent $_bin not found or not executable (set VSOCK_GUEST_EXEC_BIN)"
        return 1
    fi
    # Only when asked for (--add vsock-guest-exec): never pulled in by host-only autodetection.
    return 255
}

# called by dracut
depends() {
    # base: dracut-lib.sh (getarg, warn, die) and the hook runner.
    echo base
    return 0
}

# called by dracut
installkernel() {
    # virtio_pci is the bus the virtio-vsock device sits on; on kernels where it is built in,
    # instmods skips it. hostonly='' installs them even in a host-only image built on a machine
    # that has no vsock device itself.
    hostonly='' instmods virtio_pci vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport
    if [[ $VSOCK_GUEST_EXEC_ON_DISK == 1 ]]; then
        hostonly='' instmods virtio_blk squashfs
    fi
}

# called by dracut
install() {
    local _bin="${VSOCK_GUEST_EXEC_BIN:-/usr/bin/vsock_guest_exec}"
    if [[ $do_strip == yes ]]; then
        dfatal "vsock-guest-exec: build with --nostrip: stripping $_bin would drop the program embedded in it"
        return 1
    fi
    if [[ $VSOCK_GUEST_EXEC_ON_DISK == 1 ]]; then
        # The agent comes from rd.vge.agent=DEVICE: its libraries (the loader, libc and the rest) are here.
        local _lib
        for _lib in $(ldd "$_bin" | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}'); do
            inst_library "$_lib"
        done
        inst_multiple mount umount
    else
        # inst_binary (not inst_simple): the agent links to libc, whose libraries dracut resolves and copies.
        inst_binary "$_bin" /usr/bin/vsock_guest_exec
    fi
    inst_multiple modprobe sleep kill
    inst_simple "$moddir/vge-lib.sh" /lib/vge-lib.sh
    # persistent, listen: start the agent early, so the host can reach the initrd while it waits for the root.
    inst_hook pre-udev 50 "$moddir/vge-start.sh"
    # disposable: run the host's command once the real root is mounted at $NEWROOT, before switch_root.
    inst_hook pre-pivot 50 "$moddir/vge-disposable.sh"
    # persistent, listen: end the initrd's agent before switch_root (see README: hand-over).
    inst_hook cleanup 50 "$moddir/vge-stop.sh"
}
