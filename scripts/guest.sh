#!/usr/bin/env bash
# A guest to play with: boots the demo guest (dracut initrd, agent listening on vsock port 1024 behind
# vhost-device-vsock), prints the vge commands to try, powers it off on Ctrl-C or after --minutes
# (default 30). Options and modes: scripts/guest.ts. Needs scripts/guest-deps.sh to have run once.
#
#   bash scripts/guest.sh [--minutes N] [--mode listen|persistent]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x dist/vsock_guest_exec-linux-x64 ] || bun run build
# exec: Ctrl-C and SIGTERM reach guest.ts itself, which waits until QEMU and the backend are gone.
exec bun scripts/guest.ts "$@"
