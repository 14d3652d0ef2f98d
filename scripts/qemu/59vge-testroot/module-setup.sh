#!/bin/bash
# shellcheck disable=SC2154 # moddir is set by dracut
# Test-only dracut module "vge-testroot": root=vge-testroot makes a throw-away real root on tmpfs
# (static busybox, a tiny /sbin/init), so that a guest test goes through the whole dracut flow
# (pre-pivot, cleanup, switch_root) without a disk. Its init prints markers and powers off.

# called by dracut
check() {
    require_binaries busybox || return 1
    return 255
}

# called by dracut
depends() {
    echo base
    return 0
}

# called by dracut
install() {
    inst_simple "$(command -v busybox)" /usr/lib/vge-testroot/busybox
    inst_simple "$moddir/testroot-init.sh" /usr/lib/vge-testroot/init
    inst_hook cmdline 90 "$moddir/testroot-cmdline.sh"
    inst_hook mount 90 "$moddir/testroot-mount.sh"
}
