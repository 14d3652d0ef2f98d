#!/usr/bin/env bash
# Build a small ext4 disk image holding a throw-away real root: static busybox and the test root's
# init (59vge-testroot/testroot-init.sh). For boots where dracut itself mounts the root
# (root=/dev/vda), e.g. the systemd-based initrd, which does not run the vge-testroot mount hook.
#
#   scripts/qemu/testroot-disk.sh -o OUT
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { printf 'testroot-disk: error: %s\n' "$*" >&2; exit 1; }
out=""
while [ $# -gt 0 ]; do
  case $1 in
    -o | --out) out=$2; shift 2 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
[ -n "$out" ] || die "-o OUT is required"
busybox=$(command -v busybox) || die "busybox not installed (run scripts/guest-deps.sh)"
command -v mkfs.ext4 > /dev/null || die "mkfs.ext4 not installed (run scripts/guest-deps.sh)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$HERE/59vge-testroot/testroot-init.sh" "$root/sbin/init"
# systemd's switch-root refuses a root without os-release.
printf 'ID=vge-testroot\nNAME="vsock-guest-exec test root"\n' > "$root/etc/os-release"
mkfs.ext4 -q -F -d "$root" -L vge-testroot "$out" 32M
