#!/usr/bin/env bash
# Build a small dracut initramfs that carries the vsock_guest_exec agent (module initrd/50vsock-guest-exec),
# for the kernel that scripts/guest-deps.sh unpacked (no kernel needs to be installed on this machine).
#
#   scripts/build-initrd.sh [-o OUT] [--kver KVER] [--kroot DIR] [--agent FILE]
#                           [--module-dir DIR]... [--add MODULE]... [--compress CMD] [-- DRACUT-ARGS...]
#
#   -o, --out FILE     image to write (default: $VGE_GUEST_CACHE/initrd-vsock-guest-exec-KVER.img)
#   --kver KVER        kernel version (default: the one in $VGE_GUEST_CACHE/kernel/current)
#   --kroot DIR        folder holding lib/modules/KVER (default: $VGE_GUEST_CACHE/kernel/KVER)
#   --agent FILE       agent executable (default: dist/vsock_guest_exec-linux-x64); never stripped
#   --agent-on-disk    leave the agent out (its libraries, virtio_blk and squashfs go in): it runs from
#                      a disk at boot, rd.vge.agent=DEVICE (scripts/build-agent-image.sh); for 128 MiB guests
#   --module-dir DIR   another dracut module folder (NNname) to make available; repeatable
#   --add MODULE       another dracut module to include; repeatable
#   --compress CMD     compressor command (default "zstd -19 -q -T0": ~47 MiB instead of ~57 MiB at
#                      zstd -3, for ~40 s of packing on 2 cores, BENCHMARKS.md; "cat" for none)
#   -- DRACUT-ARGS     passed on to dracut, e.g. -- --add-drivers "virtio_blk" for a disk root
#
# Modules: dash (a faster /bin/sh than bash under TCG: ~1 s less boot), base, vsock-guest-exec, plus --add.
# dracut only looks for modules under its base folder (/usr/lib/dracut/modules.d). Rather than write
# into it, this script lays a private base folder of symlinks (the system's files plus ours) and
# points dracut at it with dracutbasedir. Host configuration (/etc/dracut.conf*) is ignored.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${VGE_GUEST_CACHE:-$REPO/.cache/guest}
SYS_DRACUT=${VGE_SYSTEM_DRACUT_DIR:-/usr/lib/dracut}

die() { printf 'build-initrd: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'build-initrd: %s\n' "$*"; }

out="" kver="" kroot="" agent="$REPO/dist/vsock_guest_exec-linux-x64" compress="zstd -19 -q -T0" on_disk=0
module_dirs=("$REPO/initrd/50vsock-guest-exec")
extra=()
modules=(dash base vsock-guest-exec)
while [ $# -gt 0 ]; do
  case $1 in
    -o | --out) out=$2; shift 2 ;;
    --kver) kver=$2; shift 2 ;;
    --kroot) kroot=$2; shift 2 ;;
    --agent) agent=$2; shift 2 ;;
    --agent-on-disk) on_disk=1; shift ;;
    --module-dir) module_dirs+=("$(cd "$2" && pwd)"); shift 2 ;;
    --add) modules+=("$2"); shift 2 ;;
    --compress) compress=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

command -v dracut > /dev/null || die "dracut not installed (run scripts/guest-deps.sh)"
if [ -z "$kver" ]; then
  [ -f "$CACHE/kernel/current" ] || die "no kernel in $CACHE (run scripts/guest-deps.sh)"
  read -r kver < "$CACHE/kernel/current"
fi
kroot=${kroot:-$CACHE/kernel/$kver}
[ -f "$kroot/lib/modules/$kver/modules.dep" ] || die "$kroot/lib/modules/$kver/modules.dep missing (run scripts/guest-deps.sh)"
[ -x "$agent" ] || die "agent $agent not found or not executable (run: bun run build)"
agent=$(cd "$(dirname "$agent")" && pwd)/$(basename "$agent")
out=${out:-$CACHE/initrd-vsock-guest-exec-$kver.img}
mkdir -p "$(dirname "$out")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
base=$work/dracut
mkdir -p "$base/modules.d" "$work/conf.d" "$work/tmp"
for f in "$SYS_DRACUT"/*; do
  [ "$(basename "$f")" = modules.d ] || ln -s "$f" "$base/"
done
for m in "$SYS_DRACUT"/modules.d/* "${module_dirs[@]}"; do
  ln -sfn "$m" "$base/modules.d/$(basename "$m")"
done

say "dracut --kver $kver -m \"${modules[*]}\" agent=$agent -> $out"
start=$(date +%s%N)
# --nostrip: stripping the agent (a bun --compile executable) would drop its embedded program.
if ! dracutbasedir=$base VSOCK_GUEST_EXEC_BIN=$agent VSOCK_GUEST_EXEC_ON_DISK=$on_disk dracut \
  --force --quiet --no-hostonly --no-hostonly-cmdline --nostrip --no-early-microcode \
  --conf /dev/null --confdir "$work/conf.d" --tmpdir "$work/tmp" \
  --kver "$kver" --kmoddir "$kroot/lib/modules/$kver" \
  -m "${modules[*]}" --compress "$compress" "${extra[@]}" \
  "$out.tmp" > "$work/dracut.log" 2>&1; then
  tail -n 30 "$work/dracut.log" >&2
  rm -f "$out.tmp"
  die "dracut failed (last lines above)"
fi
mv "$out.tmp" "$out"
ms=$((($(date +%s%N) - start) / 1000000))
say "done in $((ms / 1000)).$((ms % 1000 / 100)) s, $(du -h "$out" | cut -f1)"
