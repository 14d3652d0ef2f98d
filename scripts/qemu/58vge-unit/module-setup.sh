#!/bin/bash
# shellcheck disable=SC2154 # moddir and systemdsystemunitdir are set by dracut
# Build-time input: VGE_UNIT_FILE, the unit under test (initrd/vsock-guest-exec.service).
# Test-only dracut module "vge-unit": the real vsock-guest-exec.service (initrd/) under the systemd that
# is PID 1 of a systemd-based initrd, the same systemd a real root runs. Boot with
# rd.systemd.unit=vge-unit-test.target: it starts the unit (host port 1024) and a probe agent on host
# port 1025 (vge-probe.service, not contained) from which a test kills and stops the unit.

# called by dracut
check() {
    return 255
}

# called by dracut
depends() {
    echo systemd vsock-guest-exec
    return 0
}

# called by dracut
install() {
    inst_simple "${VGE_UNIT_FILE:?set VGE_UNIT_FILE}" "$systemdsystemunitdir/vsock-guest-exec.service"
    inst_simple "$moddir/vge-probe.service" "$systemdsystemunitdir/vge-probe.service"
    inst_simple "$moddir/vge-unit-test.target" "$systemdsystemunitdir/vge-unit-test.target"
    inst_multiple setsid cat grep sleep systemctl
}
