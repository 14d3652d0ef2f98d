// Where the guest tests find their inputs, and why they skip when one is missing.
// Everything can be overridden by environment variables (see harness.ts).
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dir, "../..");
export const CACHE = process.env.VGE_GUEST_CACHE ?? join(REPO, ".cache/guest");

export interface GuestDeps {
  qemu: string;
  backend: string; // vhost-device-vsock
  kver: string;
  kernel: string; // vmlinuz
  kroot: string; // holds lib/modules/KVER
  agent: string;
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
export function findGuestDeps(): { deps: GuestDeps } | { missing: string } {
  const fix = "run scripts/guest-deps.sh";
  const qemu = process.env.VGE_QEMU ?? which("qemu-system-x86_64");
  if (!qemu) return { missing: `qemu-system-x86_64 not found (${fix})` };
  const cargoBin = join(process.env.CARGO_HOME ?? join(process.env.HOME ?? "/root", ".cargo"), "bin");
  const backend = process.env.VGE_VHOST_VSOCK ?? which("vhost-device-vsock", [cargoBin]);
  if (!backend) return { missing: `vhost-device-vsock not found (${fix})` };
  const current = join(CACHE, "kernel/current");
  const kver = process.env.VGE_KVER ?? (existsSync(current) ? readFileSync(current, "utf8").trim() : undefined);
  if (!kver) return { missing: `no guest kernel in ${CACHE} (${fix})` };
  const kroot = process.env.VGE_KROOT ?? join(CACHE, "kernel", kver);
  const kernel = process.env.VGE_KERNEL ?? join(kroot, "boot", `vmlinuz-${kver}`);
  if (!existsSync(kernel)) return { missing: `guest kernel ${kernel} missing (${fix})` };
  if (!existsSync(join(kroot, "lib/modules", kver, "modules.dep"))) return { missing: `modules of ${kver} missing under ${kroot} (${fix})` };
  const agent = process.env.VGE_AGENT ?? join(REPO, "dist/vsock_guest_exec-linux-x64");
  if (!executable(agent)) return { missing: `agent ${agent} not built (run: bun run build)` };
  return { deps: { qemu, backend, kver, kernel, kroot, agent } };
}

/**
 * For test.skipIf: a reason string when guests cannot boot here, else undefined. With
 * VGE_REQUIRE_GUEST=1 (CI, where scripts/guest-deps.sh ran) it never skips: a missing input then fails
 * the test with the same reason instead of hiding behind a skip.
 */
export function guestSkipReason(extraTools: string[] = []): string | undefined {
  if (process.env.VGE_REQUIRE_GUEST === "1") return undefined;
  const found = findGuestDeps();
  if ("missing" in found) return found.missing;
  for (const tool of extraTools) if (!which(tool)) return `${tool} not found (run scripts/guest-deps.sh)`;
  return undefined;
}

/** A test's name with the skip reason in it, so that the runner's and junit's lists say why. */
export function named(name: string, skipReason: string | undefined): string {
  return skipReason ? `${name} [skipped: ${skipReason}]` : name;
}
