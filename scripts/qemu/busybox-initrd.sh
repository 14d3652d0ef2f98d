#!/usr/bin/env bash
# Build the busybox test initramfs: static busybox, busybox-init.sh as /init, the virtio-vsock modules
# of the cached kernel, and the agent with the libraries it links to.
#
#   scripts/qemu/busybox-initrd.sh -o OUT [--agent FILE] [--kver KVER] [--kroot DIR] [--compress CMD]
#
# Defaults as in scripts/build-initrd.sh: kernel from $VGE_GUEST_CACHE (scripts/guest-deps.sh),
# agent dist/vsock_guest_exec-linux-x64, compressor "zstd -3 -q -T0" ("cat" for none).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${VGE_GUEST_CACHE:-$REPO/.cache/guest}
die() { printf 'busybox-initrd: error: %s\n' "$*" >&2; exit 1; }

out="" kver="" kroot="" agent="$REPO/dist/vsock_guest_exec-linux-x64" compress="zstd -3 -q -T0"
while [ $# -gt 0 ]; do
  case $1 in
    -o | --out) out=$2; shift 2 ;;
    --agent) agent=$2; shift 2 ;;
    --kver) kver=$2; shift 2 ;;
    --kroot) kroot=$2; shift 2 ;;
    --compress) compress=$2; shift 2 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
[ -n "$out" ] || die "-o OUT is required"
if [ -z "$kver" ]; then
  [ -f "$CACHE/kernel/current" ] || die "no kernel in $CACHE (run scripts/guest-deps.sh)"
  read -r kver < "$CACHE/kernel/current"
fi
kroot=${kroot:-$CACHE/kernel/$kver}
moddir=$kroot/lib/modules/$kver
[ -d "$moddir" ] || die "$moddir missing (run scripts/guest-deps.sh)"
[ -x "$agent" ] || die "agent $agent not found or not executable (run: bun run build)"
busybox=$(command -v busybox) || die "busybox not installed (run scripts/guest-deps.sh)"
# ldd fails on a static executable ("not a dynamic executable"); a dynamic busybox would need its libraries.
if ldd "$busybox" > /dev/null 2>&1; then die "$busybox is not static (install busybox-static)"; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,lib/modules,proc,sys,dev,tmp,run,etc}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$HERE/busybox-init.sh" "$root/init"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
  vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport; do
  ko=$(find "$moddir/kernel" -name "$m.ko" -print -quit)
  [ -n "$ko" ] || die "module $m.ko not found under $moddir"
  cp "$ko" "$root/lib/modules/"
done
# Never strip the agent: it would lose its embedded program.
cp "$agent" "$root/usr/bin/vsock_guest_exec"
# The agent's shared libraries, at the paths the loader looks for them.
ldd "$agent" | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --owner 0:0) | $compress > "$out.tmp"
mv "$out.tmp" "$out"
