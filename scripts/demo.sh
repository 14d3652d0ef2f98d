#!/usr/bin/env bash
# README's "run" command: installs what a guest boot needs on a fresh Debian machine (QEMU, dracut, the
# cloud kernel, vhost-device-vsock, bun), builds the agent, then runs scripts/demo.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/guest-deps.sh
bun install --frozen-lockfile
bun run build
exec bun scripts/demo.ts
