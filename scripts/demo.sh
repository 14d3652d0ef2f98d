#!/usr/bin/env bash
# `bun run demo`: boot a guest under QEMU and run commands in it with vge (see scripts/demo.ts).
# Installs the guest dependencies and builds the agent first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/guest-deps.sh
[ -x dist/vsock_guest_exec-linux-x64 ] || bun run build
exec bun scripts/demo.ts
