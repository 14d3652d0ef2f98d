// Where guest boots find their inputs, and why tests skip when one is missing.
// x86_64 inputs can be overridden by environment variables (see harness.ts); the arm64 ones
// (arch "aarch64") come from the cache and dist/ only, except VGE_AGENT_ARM64.
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dir, "../..");
export const CACHE = process.env.VGE_GUEST_CACHE ?? join(REPO, ".cache/guest");

/** Guest architectures, spelled as QEMU and the kernel (uname -m) spell them. */
export type GuestArch = "x86_64" | "aarch64";

export interface GuestDeps {
  arch: GuestArch;
  qemu: string;
  backend: string; // vhost-device-vsock
  kver: string;
  kernel: string; // vmlinuz
  kroot: string; // holds lib/modules/KVER
  agent: string;
  /** aarch64: unpacked busybox-static:arm64 and libc6:arm64 (scripts/guest-deps.sh). */
  sysroot?: string;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** First executable called `name` on PATH or in the extra folders, or undefined. */
export function which(name: string, extra: string[] = []): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(":"), ...extra]) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The inputs of a guest boot, or the reason (one line, with the fix) why they are not all there. */
export function findGuestDeps(arch: GuestArch = "x86_64"): { deps: GuestDeps } | { missing: string } {
  const fix = "run scripts/guest-deps.sh";
  const x86 = arch === "x86_64";
  const qemuName = `qemu-system-${arch}`;
  const qemu = (x86 ? process.env.VGE_QEMU : undefined) ?? which(qemuName);
  if (!qemu) return { missing: `${qemuName} not found (${fix})` };
  const cargoBin = join(process.env.CARGO_HOME ?? join(process.env.HOME ?? "/root", ".cargo"), "bin");
  const backend = process.env.VGE_VHOST_VSOCK ?? which("vhost-device-vsock", [cargoBin]);
  if (!backend) return { missing: `vhost-device-vsock not found (${fix})` };
  const current = join(CACHE, x86 ? "kernel/current" : "kernel/current-arm64");
  const kver = (x86 ? process.env.VGE_KVER : undefined) ?? (existsSync(current) ? readFileSync(current, "utf8").trim() : undefined);
  if (!kver) return { missing: `no ${arch} guest kernel in ${CACHE} (${fix})` };
  const kroot = (x86 ? process.env.VGE_KROOT : undefined) ?? join(CACHE, "kernel", kver);
  const kernel = (x86 ? process.env.VGE_KERNEL : undefined) ?? join(kroot, "boot", `vmlinuz-${kver}`);
  if (!existsSync(kernel)) return { missing: `guest kernel ${kernel} missing (${fix})` };
  if (!existsSync(join(kroot, "lib/modules", kver, "modules.dep"))) return { missing: `modules of ${kver} missing under ${kroot} (${fix})` };
  const agent = (x86 ? process.env.VGE_AGENT : process.env.VGE_AGENT_ARM64) ?? join(REPO, `dist/vsock_guest_exec-linux-${x86 ? "x64" : "arm64"}`);
  if (!executable(agent)) return { missing: `agent ${agent} not built (run: bun run build)` };
  if (x86) return { deps: { arch, qemu, backend, kver, kernel, kroot, agent } };
  const sysroot = join(CACHE, "arm64/root");
  if (!executable(join(sysroot, "bin/busybox"))) return { missing: `arm64 busybox and libc not unpacked in ${sysroot} (${fix})` };
  return { deps: { arch, qemu, backend, kver, kernel, kroot, agent, sysroot } };
}

/**
 * vhost-device-vsock-rst (scripts/guest-deps.sh builds it: 0.3.0 with our RST patch), or undefined. For the
 * few tests that measure the agent's own dial cadence in a guest: the stock backend never answers a connect
 * nobody takes, so every attempt there lasts as long as the guest allows it. Override: VGE_VHOST_VSOCK_RST.
 */
export function findRstBackend(): string | undefined {
  const cargoBin = join(process.env.CARGO_HOME ?? join(process.env.HOME ?? "/root", ".cargo"), "bin");
  return process.env.VGE_VHOST_VSOCK_RST ?? which("vhost-device-vsock-rst", [cargoBin]);
}

/**
 * For test.skipIf: a reason string when guests cannot boot here, else undefined. With
 * VGE_REQUIRE_GUEST=1 (CI, where scripts/guest-deps.sh ran) it never skips: a missing input then fails
 * the test with the same reason instead of hiding behind a skip.
 */
export function guestSkipReason(extraTools: string[] = [], arch: GuestArch = "x86_64"): string | undefined {
  if (process.env.VGE_REQUIRE_GUEST === "1") return undefined;
  const found = findGuestDeps(arch);
  if ("missing" in found) return found.missing;
  for (const tool of extraTools) if (!which(tool)) return `${tool} not found (run scripts/guest-deps.sh)`;
  return undefined;
}

/** A test's name with the skip reason in it, so that the runner's and junit's lists say why. */
export function named(name: string, skipReason: string | undefined): string {
  return skipReason ? `${name} [skipped: ${skipReason}]` : name;
}
