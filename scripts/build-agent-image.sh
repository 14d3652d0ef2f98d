#!/usr/bin/env bash
# Build the agent's disk image: a read-only squashfs holding vsock_guest_exec, for guests too small to
# carry the ~106 MiB agent in their initramfs (a 128 MiB Firecracker guest: initrd/README.md "Small guests").
# Attach it as a block device and boot with rd.vge.agent=DEVICE (dracut) or vge_agent_disk=DEVICE (the
# busybox test image): the agent runs from the mounted image, so RAM holds only the pages it touches, and
# those are clean: the kernel may drop them and read them again.
#
#   scripts/build-agent-image.sh -o OUT [--agent FILE] [--level N]
#
#   -o, --out FILE   image to write
#   --agent FILE     agent executable (default: dist/vsock_guest_exec-linux-x64); never stripped
#   --level N        zstd level (default 19: ~46 MiB in ~20 s here; 3: ~52 MiB in ~1 s)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { printf 'build-agent-image: error: %s\n' "$*" >&2; exit 1; }

out="" agent="$REPO/dist/vsock_guest_exec-linux-x64" level=19
while [ $# -gt 0 ]; do
  case $1 in
    -o | --out) out=$2; shift 2 ;;
    --agent) agent=$2; shift 2 ;;
    --level) level=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$out" ] || die "-o OUT is required"
[ -x "$agent" ] || die "agent $agent not found or not executable (run: bun run build)"
command -v mksquashfs > /dev/null || die "mksquashfs not installed (apt-get install squashfs-tools; scripts/guest-deps.sh does)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/root"
# Never strip the agent: it would lose its embedded program.
cp "$agent" "$work/root/vsock_guest_exec"
mksquashfs "$work/root" "$out.tmp" -noappend -quiet -no-progress -all-root -comp zstd -Xcompression-level "$level" > /dev/null
mv "$out.tmp" "$out"
