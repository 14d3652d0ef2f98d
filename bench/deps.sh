#!/usr/bin/env bash
# Installs the peers `bun run bench` measures against, from Debian's packages, only when missing:
# qemu-guest-agent (qemu-ga), openssh-server (sshd), openssh-client (ssh), socat, and gcc with libc6-dev
# (static glibc) for the C floor rows (bench/peers/floor.c) and the C agent of the original's formats
# (bench/peers/legacy-agent.c). Idempotent.
set -euo pipefail
need=()
command -v qemu-ga >/dev/null 2>&1 || [ -x /usr/sbin/qemu-ga ] || need+=(qemu-guest-agent)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/aarch64-linux-gnu/libc.a ] || need+=(libc6-dev)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/deps.sh: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
# No services: the bench starts its own sshd and qemu-ga on private sockets; policy-rc.d keeps the
# packages' postinst from starting the system ones.
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d.vge-bench
chmod +x /usr/sbin/policy-rc.d.vge-bench
if [ ! -e /usr/sbin/policy-rc.d ]; then
  mv /usr/sbin/policy-rc.d.vge-bench /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
else
  rm -f /usr/sbin/policy-rc.d.vge-bench
fi
apt-get install -y -qq --no-install-recommends "${need[@]}"
