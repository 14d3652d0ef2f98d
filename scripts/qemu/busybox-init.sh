#!/bin/sh
# /init of the busybox test initramfs (built by busybox-initrd.sh). It loads the virtio-vsock modules,
# runs the agent once with arguments from the kernel command line, prints markers and powers off.
#
# Kernel arguments (unknown key=value arguments arrive here as environment variables):
#   vge_args=A,B,C   the agent's arguments, commas for spaces (default: none, i.e. disposable 2:1024)
#   vge_runs=N       run the agent N times in a row (default 1), e.g. to follow a host restart
#   vge_argsN=A,B    run N's own arguments instead of vge_args (e.g. dial out, then listen: one boot,
#                    several scenarios; boots are the slow part, ~15 s for an arm64 guest under TCG)
#   vge_agent_disk=DEVICE   run the agent from the squashfs image on DEVICE (scripts/build-agent-image.sh;
#                    an image built with --agent-on-disk carries no agent of its own)
#   vge_cgroup2=1    mount cgroup2 on /sys/fs/cgroup (for the agent's --cgroup; the agent enables controllers)
# Markers on the console: "VGE-INIT: up", "VGE-INIT: agent exited N", "VGE-INIT: poweroff".
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /run
mount -t tmpfs tmpfs /tmp
if [ "${vge_cgroup2:-}" = 1 ]; then
    mount -t cgroup2 none /sys/fs/cgroup || echo "VGE-INIT: cgroup2 mount failed"
fi

up() { read -r _s _ < /proc/uptime; echo "$_s"; }
echo "VGE-INIT: up uptime=$(up)"

# The documented order: bus first, then the socket family, then its virtio transport.
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
    vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport; do
    insmod "/lib/modules/$m.ko" || echo "VGE-INIT: insmod $m failed"
done

agent=/usr/bin/vsock_guest_exec
if [ -n "${vge_agent_disk:-}" ]; then
    # Mounted read-only: the agent's pages come from the disk as it touches them and can be dropped again.
    insmod /lib/modules/virtio_blk.ko || echo "VGE-INIT: insmod virtio_blk failed"
    insmod /lib/modules/squashfs.ko || echo "VGE-INIT: insmod squashfs failed"
    mkdir -p /run/agent
    mount -t squashfs -o ro "$vge_agent_disk" /run/agent || echo "VGE-INIT: mount $vge_agent_disk failed"
    agent=/run/agent/vsock_guest_exec
fi

runs=${vge_runs:-1}
i=0
while [ "$i" -lt "$runs" ]; do
    i=$((i + 1))
    # vge_argsN, when the kernel command line has it (i is a number: the eval only reads a variable).
    eval "run_args=\${vge_args$i-\$vge_args}"
    args=$(echo "${run_args:-}" | tr ',' ' ')
    echo "VGE-INIT: agent start run=$i args=[$args] uptime=$(up)"
    # shellcheck disable=SC2086 # args is a word list on purpose
    "$agent" $args
    echo "VGE-INIT: agent exited $? run=$i uptime=$(up)"
done

sync
echo "VGE-INIT: poweroff uptime=$(up)"
poweroff -f
