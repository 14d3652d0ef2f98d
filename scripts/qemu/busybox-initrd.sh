#!/usr/bin/env bash
# Build the busybox test initramfs: static busybox, busybox-init.sh as /init, the virtio-vsock modules
# of the cached kernel, and the agent with the libraries it links to.
#
#   scripts/qemu/busybox-initrd.sh -o OUT [--arch x86_64|aarch64] [--agent FILE] [--kver KVER]
#                                  [--kroot DIR] [--sysroot DIR] [--compress CMD]
#                                  [--file SRC:DEST]...   (copies SRC to DEST in the image, mode 0600)
#                                  [--agent-on-disk]
#
# --agent-on-disk: the agent's libraries and the virtio_blk and squashfs modules instead of the agent,
# which then comes from a disk made by scripts/build-agent-image.sh (kernel argument vge_agent_disk=DEVICE):
# a ~3 MiB image that boots and serves in a 128 MiB guest (initrd/README.md "Small guests").
# Defaults as in scripts/build-initrd.sh: kernel from $VGE_GUEST_CACHE (scripts/guest-deps.sh),
# agent dist/vsock_guest_exec-linux-x64; but compressor "zstd -3 -q -T0" ("cat" for none): a test image,
# packed fast rather than small.
# --arch aarch64 (an arm64 guest; dracut would run host binaries, so arm64 images are busybox only):
# kernel from kernel/current-arm64, agent dist/vsock_guest_exec-linux-arm64, and busybox and the
# loader and libc from --sysroot (default $VGE_GUEST_CACHE/arm64/root: busybox-static:arm64 and
# libc6:arm64 unpacked by scripts/guest-deps.sh), since ldd cannot read a foreign executable.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${VGE_GUEST_CACHE:-$REPO/.cache/guest}
die() { printf 'busybox-initrd: error: %s\n' "$*" >&2; exit 1; }

out="" kver="" kroot="" agent="" agent_on_disk=0 arch=x86_64 sysroot="" compress="zstd -3 -q -T0"
files=()
while [ $# -gt 0 ]; do
  case $1 in
    -o | --out) out=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --sysroot) sysroot=$2; shift 2 ;;
    --agent) agent=$2; shift 2 ;;
    --agent-on-disk) agent_on_disk=1; shift ;;
    --kver) kver=$2; shift 2 ;;
    --kroot) kroot=$2; shift 2 ;;
    --compress) compress=$2; shift 2 ;;
    --file) files+=("$2"); shift 2 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
[ -n "$out" ] || die "-o OUT is required"
case $arch in
  x86_64) current=current agent=${agent:-$REPO/dist/vsock_guest_exec-linux-x64} ;;
  aarch64)
    current=current-arm64 agent=${agent:-$REPO/dist/vsock_guest_exec-linux-arm64}
    sysroot=${sysroot:-$CACHE/arm64/root}
    [ -x "$sysroot/bin/busybox" ] || die "no arm64 busybox in $sysroot (run scripts/guest-deps.sh)"
    ;;
  *) die "--arch $arch: not x86_64 or aarch64" ;;
esac
if [ -z "$kver" ]; then
  [ -f "$CACHE/kernel/$current" ] || die "no kernel in $CACHE/kernel/$current (run scripts/guest-deps.sh)"
  read -r kver < "$CACHE/kernel/$current"
fi
kroot=${kroot:-$CACHE/kernel/$kver}
moddir=$kroot/lib/modules/$kver
[ -d "$moddir" ] || die "$moddir missing (run scripts/guest-deps.sh)"
[ -x "$agent" ] || die "agent $agent not found or not executable (run: bun run build)"
# The host's busybox names the applets (its own, or, for arm64, the same Debian version's).
host_busybox=$(command -v busybox) || die "busybox not installed (run scripts/guest-deps.sh)"
if [ "$arch" = x86_64 ]; then
  busybox=$host_busybox
  # ldd fails on a static executable ("not a dynamic executable"); a dynamic busybox would need its libraries.
  if ldd "$busybox" > /dev/null 2>&1; then die "$busybox is not static (install busybox-static)"; fi
else
  busybox=$sysroot/bin/busybox
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,lib/modules,proc,sys,dev,tmp,run,etc}
cp "$busybox" "$root/bin/busybox"
for applet in $("$host_busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$HERE/busybox-init.sh" "$root/init"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
  vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport; do
  ko=$(find "$moddir/kernel" -name "$m.ko" -print -quit)
  [ -n "$ko" ] || die "module $m.ko not found under $moddir"
  cp "$ko" "$root/lib/modules/"
done
if [ "$agent_on_disk" = 1 ]; then
  # The agent comes from a disk (vge_agent_disk=DEVICE, busybox-init.sh): only what mounts it is here.
  for m in virtio_blk squashfs; do
    ko=$(find "$moddir/kernel" -name "$m.ko" -print -quit)
    [ -n "$ko" ] || die "module $m.ko not found under $moddir"
    cp "$ko" "$root/lib/modules/"
  done
else
  # Never strip the agent: it would lose its embedded program.
  cp "$agent" "$root/usr/bin/vsock_guest_exec"
fi
# The agent's shared libraries, at the paths the loader looks for them.
if [ "$arch" = x86_64 ]; then
  ldd "$agent" | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
else
  # The whole of libc6:arm64's /lib (a few MiB): the loader and every library the agent may open.
  cp -L "$sysroot/lib/ld-linux-aarch64.so.1" "$root/lib/"
  cp -a "$sysroot/lib/aarch64-linux-gnu" "$root/lib/"
fi

for f in "${files[@]}"; do
  src=${f%%:*} dest=${f#*:}
  if [ ! -f "$src" ] || [ "${dest#/}" = "$dest" ]; then die "--file wants SRC:/DEST with SRC a file, got '$f'"; fi
  install -D -m 0600 "$src" "$root$dest"
done

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --owner 0:0) | $compress > "$out.tmp"
mv "$out.tmp" "$out"
