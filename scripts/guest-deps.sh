#!/usr/bin/env bash
# Install what booting test guests needs, on a fresh Debian 12 machine (as root).
# Idempotent: every step checks first and does nothing when its result is already there.
#
#   scripts/guest-deps.sh            # everything
#   VGE_GUEST_CACHE=/var/cache/vge scripts/guest-deps.sh
#
# Results:
#   apt packages   qemu-system-x86 busybox-static socat cpio kmod dracut shellcheck zstd e2fsprogs strace
#                  squashfs-tools (the agent's disk image for small guests: scripts/build-agent-image.sh)
#                  (strace: test/package checks that vge on Node makes no socket for a vsock: address)
#                  (+ qemu-system-arm for the arm64 guest)
#   go             Go >= 1.22 for go/ (present in /usr/local/go, or golang-1.2x-go from apt when offered)
#   backend        vhost-device-vsock 0.3.0 (cargo install --locked), in $CARGO_HOME/bin
#                  vhost-device-vsock-rst: the same with scripts/patches/*-rst.patch (an RST for a connect
#                  nobody takes), beside it, for the tests that measure the agent's dial cadence in a guest
#   kernel         $VGE_GUEST_CACHE/kernel/KVER/{boot/vmlinuz-KVER,lib/modules/KVER}, depmod'ed;
#                  $VGE_GUEST_CACHE/kernel/current holds KVER (x86_64), kernel/current-arm64 the arm64 one
#   arm64 userland $VGE_GUEST_CACHE/arm64/root: busybox-static:arm64 and libc6:arm64 unpacked (dpkg -x),
#                  for the arm64 busybox initramfs (dpkg --add-architecture arm64 on first run)
# VGE_GUEST_CACHE defaults to .cache/guest in the repository (ignored by git).
# VGE_KERNEL_PKG picks another kernel package (default: what linux-image-cloud-amd64 depends on).
# VGE_GUEST_ARM64=0 skips everything arm64 (qemu-system-arm, the foreign architecture, kernel, userland).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${VGE_GUEST_CACHE:-$REPO/.cache/guest}
APT_PACKAGES=(qemu-system-x86 busybox-static socat cpio kmod dracut shellcheck zstd e2fsprogs strace squashfs-tools)
ARM64=${VGE_GUEST_ARM64:-1}
[ "$ARM64" = 0 ] || APT_PACKAGES+=(qemu-system-arm)
VHOST_VERSION=0.3.0
BUN_VERSION=1.4.5
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
STEP="start"

say() { printf 'guest-deps: %s\n' "$*"; }
# One clear line on any failure: which step, which command, which status.
on_error() {
  local rc=$?
  printf 'guest-deps: error: %s failed (exit %s): %s\n' "$STEP" "$rc" "$BASH_COMMAND" >&2
  exit "$rc"
}
trap on_error ERR
scratch=""
trap '[ -z "$scratch" ] || rm -rf "$scratch"' EXIT

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
}

STEP="apt packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "guest-deps: error: missing ${missing[*]}; run as root to install them" >&2; exit 1; }
  apt_update_once
  say "apt-get install ${missing[*]}"
  # --no-remove: dracut must not replace anything on a developer machine; fail instead.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" >/dev/null
else
  say "apt packages present: ${APT_PACKAGES[*]}"
fi

STEP="bun"
if command -v bun >/dev/null 2>&1; then
  say "bun present: $(bun --version)"
else
  say "npm install -g bun@$BUN_VERSION"
  npm install -g "bun@$BUN_VERSION" >/dev/null
fi

STEP="go"
# The Go host module (go/, go.mod: go 1.22) is tested by test/go/go.test.ts. CI machines carry Go in
# /usr/local/go; Debian 12's own golang-go is 1.19, too old, so only a golang-1.2x-go package (bookworm-
# backports, when enabled) is installed here. Without one the Go tests fail with a line saying so.
debian_go=$(find /usr/lib -maxdepth 2 -path "/usr/lib/go-1.2*/bin" 2>/dev/null | sort -V | tail -n 1)
go_bin=$(PATH="$PATH:/usr/local/go/bin:$debian_go" command -v go || true)
if [ -n "$go_bin" ]; then
  say "go present: $("$go_bin" version)"
elif [ "$(id -u)" = 0 ]; then
  apt_update_once
  go_pkg=$(apt-cache pkgnames golang-1.2 2>/dev/null | grep -E '^golang-1\.2[2-9]-go$' | sort -V | tail -n 1 || true)
  if [ -n "$go_pkg" ]; then
    say "apt-get install $go_pkg"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-remove "$go_pkg" >/dev/null
  else
    say "warning: no Go >= 1.22 here and none in apt (Debian 12 ships 1.19): install Go into /usr/local/go (go.dev/dl) or enable bookworm-backports; the Go module's tests will fail until then"
  fi
else
  say "warning: go not found (needed by test/go; run as root to install it, or put Go in /usr/local/go)"
fi

STEP="vhost-device-vsock"
vhost_bin=$(command -v vhost-device-vsock || true)
[ -n "$vhost_bin" ] || { [ -x "$CARGO_HOME/bin/vhost-device-vsock" ] && vhost_bin=$CARGO_HOME/bin/vhost-device-vsock; } || true
if [ -n "$vhost_bin" ]; then
  say "vhost-device-vsock present: $vhost_bin ($("$vhost_bin" --version))"
else
  command -v cargo >/dev/null 2>&1 || { echo "guest-deps: error: cargo not found (needed to build vhost-device-vsock); install Rust with rustup" >&2; exit 1; }
  # The target dir lives in the cache so an interrupted build resumes instead of restarting.
  say "cargo install vhost-device-vsock@$VHOST_VERSION --locked (a few minutes on 2 cores)"
  CARGO_TARGET_DIR="$CACHE/cargo-target" cargo install --quiet --locked --version "$VHOST_VERSION" vhost-device-vsock
  say "vhost-device-vsock installed: $CARGO_HOME/bin/vhost-device-vsock"
fi

# The same backend with our one patch (scripts/patches/vhost-device-vsock-0.3.0-rst.patch): it answers a
# guest's connect to a port nobody listens on with an RST, where 0.3.0 leaves it to the guest kernel's 2 s
# timeout. Only the tests that measure the agent's own promptness in a guest use it; all others keep the
# stock backend, which is what users run.
STEP="vhost-device-vsock-rst"
RST_PATCH=$REPO/scripts/patches/vhost-device-vsock-$VHOST_VERSION-rst.patch
rst_bin=$CARGO_HOME/bin/vhost-device-vsock-rst
rst_stamp=$CARGO_HOME/bin/.vhost-device-vsock-rst.sha256
rst_sum=$(sha256sum "$RST_PATCH" | cut -d' ' -f1)
if [ -x "$rst_bin" ] && [ "$(cat "$rst_stamp" 2>/dev/null)" = "$rst_sum" ]; then
  say "vhost-device-vsock-rst present: $rst_bin"
else
  command -v cargo >/dev/null 2>&1 || { echo "guest-deps: error: cargo not found (needed to build vhost-device-vsock-rst); install Rust with rustup" >&2; exit 1; }
  # The crate's source in cargo's registry (any index directory), or empty.
  crate_source() {
    local d
    for d in "$CARGO_HOME"/registry/src/*/vhost-device-vsock-"$VHOST_VERSION"; do
      [ -d "$d" ] && { echo "$d"; return 0; }
    done
    return 0
  }
  crate_src=$(crate_source)
  if [ -z "$crate_src" ]; then
    # The stock install above left the crate source in the registry unless the binary came from elsewhere.
    say "fetching the vhost-device-vsock $VHOST_VERSION crate source"
    fetch_dir=$CACHE/vhost-rst-fetch
    mkdir -p "$fetch_dir/src" && touch "$fetch_dir/src/main.rs"
    printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nvhost-device-vsock = "=%s"\n' "$VHOST_VERSION" > "$fetch_dir/Cargo.toml"
    (cd "$fetch_dir" && cargo fetch --quiet)
    crate_src=$(crate_source)
    [ -n "$crate_src" ] || { echo "guest-deps: error: cargo fetch left no vhost-device-vsock $VHOST_VERSION source under $CARGO_HOME/registry/src" >&2; exit 1; }
  fi
  # A copy: the registry's source is shared by every crate build on the machine and must stay stock.
  rst_src=$CACHE/vhost-device-vsock-rst-src
  rm -rf "$rst_src" && cp -r "$crate_src" "$rst_src"
  patch --quiet -p1 -d "$rst_src" < "$RST_PATCH"
  say "building vhost-device-vsock-rst (a few minutes on 2 cores)"
  (cd "$rst_src" && CARGO_TARGET_DIR="$CACHE/cargo-target-rst" cargo build --quiet --release --locked)
  install -m 0755 "$CACHE/cargo-target-rst/release/vhost-device-vsock" "$rst_bin"
  echo "$rst_sum" > "$rst_stamp"
  say "vhost-device-vsock-rst installed: $rst_bin"
fi

# `apt-get download` writes into the current folder and drops privileges to _apt when it can: a scratch
# folder that _apt may write to.
new_scratch() {
  [ -z "$scratch" ] || rm -rf "$scratch"
  scratch=$(mktemp -d)
  chown _apt "$scratch" 2>/dev/null || true
}

# The versioned package that a kernel meta package ($1, e.g. linux-image-cloud-amd64) depends on,
# without an architecture suffix ("linux-image-6.1.0-57-cloud-arm64:arm64" for a foreign one).
resolve_kernel_pkg() {
  apt-cache depends "$1" 2>/dev/null \
    | sed -n 's/^ *Depends: \(linux-image-[0-9][^ :]*\)\(:[a-z0-9]*\)\{0,1\}$/\1/p' | head -n1
}

# fetch_kernel META ARCH CURRENT: unpacks the kernel that META (package:arch) depends on into
# $CACHE/kernel/KVER, depmod'ed, and writes KVER to $CACHE/kernel/CURRENT. VGE_KERNEL_PKG overrides
# the x86_64 one.
fetch_kernel() {
  local meta=$1 arch=$2 current=$3 pkg="" kver kroot deb
  [ "$arch" != amd64 ] || pkg=${VGE_KERNEL_PKG:-}
  if [ -z "$pkg" ]; then
    pkg=$(resolve_kernel_pkg "$meta")
    if [ -z "$pkg" ]; then
      apt_update_once
      pkg=$(resolve_kernel_pkg "$meta")
    fi
  fi
  [ -n "$pkg" ] || { echo "guest-deps: error: cannot resolve $meta to a versioned kernel package (apt-cache depends printed none)" >&2; exit 1; }
  kver=${pkg#linux-image-}
  kroot=$CACHE/kernel/$kver
  if [ -f "$kroot/boot/vmlinuz-$kver" ] && [ -f "$kroot/lib/modules/$kver/modules.dep" ]; then
    say "kernel present: $kroot"
  else
    new_scratch
    say "apt-get download $pkg:$arch (in $scratch)"
    (cd "$scratch" && apt-get download -qq "$pkg:$arch")
    deb=$(ls "$scratch"/*.deb)
    rm -rf "$kroot.tmp"
    mkdir -p "$kroot.tmp"
    say "dpkg -x $(basename "$deb") && depmod -b ROOT $kver"
    dpkg -x "$deb" "$kroot.tmp"
    # The .deb ships no modules.dep; modprobe and dracut need it.
    depmod -b "$kroot.tmp" "$kver"
    rm -rf "$kroot"
    mv "$kroot.tmp" "$kroot"
    say "kernel ready: $kroot"
  fi
  printf '%s\n' "$kver" > "$CACHE/kernel/$current.tmp"
  mv "$CACHE/kernel/$current.tmp" "$CACHE/kernel/$current"
}

STEP="kernel"
mkdir -p "$CACHE/kernel"
fetch_kernel linux-image-cloud-amd64 amd64 current
read -r kver < "$CACHE/kernel/current"

if [ "$ARM64" != 0 ]; then
  STEP="arm64 architecture"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    [ "$(id -u)" = 0 ] || { echo "guest-deps: error: the arm64 guest needs dpkg --add-architecture arm64; run as root (or VGE_GUEST_ARM64=0)" >&2; exit 1; }
    say "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
    apt_updated=0
  fi
  # Package lists for arm64 exist only after an update that followed --add-architecture.
  if ! apt-cache show libc6:arm64 >/dev/null 2>&1; then
    apt_updated=0
    apt_update_once
  fi

  STEP="arm64 kernel"
  fetch_kernel linux-image-cloud-arm64:arm64 arm64 current-arm64

  # Only unpacked (dpkg -x), never installed: the host's own packages stay as they are.
  STEP="arm64 userland"
  aroot=$CACHE/arm64/root
  if [ -x "$aroot/bin/busybox" ] && [ -e "$aroot/lib/ld-linux-aarch64.so.1" ]; then
    say "arm64 userland present: $aroot"
  else
    new_scratch
    say "apt-get download busybox-static:arm64 libc6:arm64 (in $scratch)"
    (cd "$scratch" && apt-get download -qq busybox-static:arm64 libc6:arm64)
    rm -rf "$aroot.tmp"
    mkdir -p "$aroot.tmp"
    for deb in "$scratch"/*.deb; do dpkg -x "$deb" "$aroot.tmp"; done
    rm -rf "$aroot"
    mv "$aroot.tmp" "$aroot"
    say "arm64 userland ready: $aroot"
  fi
fi
say "done: KVER=$kver cache=$CACHE"
