// Guest images for the tests, built on demand and cached under $VGE_GUEST_CACHE/images by a hash of
// every input (agent bytes, scripts, dracut module files, kernel version), so that a rebuilt agent or an
// edited hook gives a new image and an unchanged tree reuses the old one (~1 s instead of ~2–3 s).
import { spawnSync } from "bun";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { CACHE, REPO, type GuestDeps, which } from "./deps.ts";

const HERE = import.meta.dir;
// dracut with zstd -19 takes ~40 s on a quiet 2-core machine; a loaded one may need more (VGE_IMAGE_BUILD_TIMEOUT_S).
const BUILD_TIMEOUT_MS = Number(process.env.VGE_IMAGE_BUILD_TIMEOUT_S ?? 300) * 1000;
const digests = new Map<string, string>();

/** sha256 of a file, remembered per path+size+mtime (the agent is ~100 MB). */
function fileDigest(path: string): string {
  const st = statSync(path);
  const key = `${path}:${st.size}:${st.mtimeMs}`;
  let d = digests.get(key);
  if (!d) {
    d = new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");
    digests.set(key, d);
  }
  return d;
}

/** Every regular file under `dir`, sorted, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Tools whose bytes go into an image (busybox) or decide its layout (dracut's version). */
function tools(...names: string[]): string[] {
  return names.map((n) => which(n)).filter((p): p is string => p !== undefined);
}

function keyOf(parts: string[], files: string[]): string {
  const h = new Bun.CryptoHasher("sha256");
  for (const p of parts) h.update(`${p}\n`);
  for (const f of files) h.update(`${f.slice(REPO.length)} ${fileDigest(f)}\n`);
  return h.digest("hex").slice(0, 16);
}

/** Runs `build(tmpOut)` unless `${kind}-${key}.img` exists; removes older images of the same kind. */
function cached(kind: string, key: string, argv: (out: string) => string[], env: Record<string, string> = {}): string {
  const dir = join(CACHE, "images");
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${kind}-${key}.img`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  const started = performance.now();
  // In a process group of its own (setsid): a timeout kills only the direct child, and dracut's own children
  // (cpio, zstd) would otherwise run on, loading the machine, after the test gave up on them.
  const r = spawnSync(["setsid", ...argv(tmp)], { cwd: REPO, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe", timeout: BUILD_TIMEOUT_MS });
  if (r.exitCode !== 0) {
    try {
      process.kill(-r.pid, "SIGKILL");
    } catch {
      // ESRCH: the group is gone already.
    }
    rmSync(tmp, { force: true });
    if (r.exitedDueToTimeout) throw new Error(`building the ${kind} image took over ${BUILD_TIMEOUT_MS / 1000} s (VGE_IMAGE_BUILD_TIMEOUT_S raises it); its process group was killed`);
    throw new Error(`building the ${kind} image failed (exit ${r.exitCode}):\n${r.stdout.toString()}${r.stderr.toString()}`);
  }
  renameSync(tmp, out);
  for (const f of readdirSync(dir)) {
    // Exactly KIND-HASH.img: "dracut" must not prune "dracut-systemd-….img".
    if (new RegExp(`^${kind}-[0-9a-f]{16}\\.img$`).test(f) && join(dir, f) !== out) rmSync(join(dir, f), { force: true });
  }
  console.error(`images: built ${out} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return out;
}

/** dracut copies the host's own binaries (sh, modprobe, udev) into the image: x86_64 guests only here. */
function x86Only(deps: GuestDeps, kind: string): void {
  if (deps.arch !== "x86_64") throw new Error(`a ${kind} image needs an x86_64 guest (dracut installs this host's binaries); use busyboxInitrd for ${deps.arch}`);
}

/**
 * busybox /init (busybox-init.sh) + vsock modules + agent; reads vge_args / vge_runs from the kernel command line.
 * `files` (host path → path in the image) makes an image of its own kind, `kind`, so that it never prunes
 * the plain one other tests use at the same time.
 */
export function busyboxInitrd(deps: GuestDeps, files: { src: string; dest: string }[] = [], kind = "busybox"): string {
  const script = join(HERE, "busybox-initrd.sh");
  // aarch64: busybox and libc come from the unpacked arm64 packages; the host's busybox only names the applets.
  const fromSysroot = deps.sysroot ? [join(deps.sysroot, "bin/busybox"), join(deps.sysroot, "lib/ld-linux-aarch64.so.1")] : [];
  const key = keyOf([deps.arch, deps.kver, deps.kroot, ...files.map((f) => f.dest)], [script, join(HERE, "busybox-init.sh"), deps.agent, ...tools("busybox"), ...fromSysroot, ...files.map((f) => f.src)]);
  const extra = files.flatMap((f) => ["--file", `${f.src}:${f.dest}`]);
  const kindName = deps.arch === "x86_64" ? kind : `${kind}-${deps.arch}`;
  return cached(kindName, key, (out) => [
    "bash", script, "-o", out, "--arch", deps.arch, "--agent", deps.agent, "--kver", deps.kver, "--kroot", deps.kroot,
    ...(deps.sysroot ? ["--sysroot", deps.sysroot] : []), ...extra,
  ]);
}

/**
 * The busybox image without the agent (busybox-initrd.sh --agent-on-disk): ~3 MiB (x86_64; aarch64 adds
 * libc6:arm64's /lib), for guests too small to unpack the agent (128 MiB). Boot it with agentDisk()
 * attached as /dev/vda and vge_agent_disk=/dev/vda.
 */
export function busyboxOnDiskInitrd(deps: GuestDeps): string {
  const script = join(HERE, "busybox-initrd.sh");
  const fromSysroot = deps.sysroot ? [join(deps.sysroot, "bin/busybox"), join(deps.sysroot, "lib/ld-linux-aarch64.so.1")] : [];
  const key = keyOf([deps.arch, deps.kver, deps.kroot, "agent-on-disk"], [script, join(HERE, "busybox-init.sh"), deps.agent, ...tools("busybox"), ...fromSysroot]);
  return cached(archKind("busybox-ondisk", deps), key, (out) => [
    "bash", script, "-o", out, "--arch", deps.arch, "--agent", deps.agent, "--kver", deps.kver, "--kroot", deps.kroot,
    ...(deps.sysroot ? ["--sysroot", deps.sysroot] : []), "--agent-on-disk",
  ]);
}

/** An image kind per guest architecture, so that an arm64 build never prunes the x86_64 one. */
function archKind(kind: string, deps: GuestDeps): string {
  return deps.arch === "x86_64" ? kind : `${kind}-${deps.arch}`;
}

/**
 * The agent's squashfs disk image (scripts/build-agent-image.sh) of deps.agent (so of deps.arch); attach
 * read-only. `level`: zstd level, 19 as shipped (~1 min to pack on a loaded 2-core box), 3 for tests
 * (~1 s, a few MiB larger on disk; the guest's RAM holds only the pages the agent touches either way).
 */
export function agentDisk(deps: GuestDeps, level = 19): string {
  const script = join(REPO, "scripts/build-agent-image.sh");
  const key = keyOf([String(level)], [script, deps.agent, ...tools("mksquashfs")]);
  const kind = archKind(level === 19 ? "agent-disk" : `agent-disk-${level}`, deps);
  return cached(kind, key, (out) => ["bash", script, "-o", out, "--agent", deps.agent, "--level", String(level)]);
}

/** QEMU arguments that attach `image` read-only as the first virtio disk (/dev/vda). */
export function diskArgs(image: string): string[] {
  return ["-drive", `file=${image},if=virtio,format=raw,readonly=on`];
}

/**
 * The dracut image as scripts/build-initrd.sh makes it (initrd/50vsock-guest-exec), plus the test-only
 * module vge-testroot: root=vge-testroot boots into a throw-away tmpfs root whose init prints
 * "VGE-TESTROOT: ..." markers and powers off (see 59vge-testroot). `include` (dracut --include)
 * gives an image of its own `kind`, so that it never prunes the plain one.
 */
export function dracutInitrd(deps: GuestDeps, include: { src: string; dest: string }[] = [], kind = "dracut"): string {
  x86Only(deps, "dracut");
  const script = join(REPO, "scripts/build-initrd.sh");
  const testModule = join(HERE, "59vge-testroot");
  const files = [script, ...filesUnder(join(REPO, "initrd/50vsock-guest-exec")), ...filesUnder(testModule), deps.agent, ...tools("busybox", "dracut"), ...include.map((f) => f.src)];
  const key = keyOf([deps.kver, deps.kroot, ...include.map((f) => f.dest)], files);
  // dracut --include SRC DEST: how a user puts a file (the token) into the image (initrd/README.md).
  const extra = include.length ? ["--", ...include.flatMap((f) => ["--include", f.src, f.dest])] : [];
  return cached(kind, key, (out) => [
    "bash", script, "-o", out, "--agent", deps.agent, "--kver", deps.kver, "--kroot", deps.kroot,
    "--module-dir", testModule, "--add", "vge-testroot", ...extra,
  ]);
}

/**
 * dracutInitrd without the agent (build-initrd.sh --agent-on-disk): the agent comes from agentDisk() at
 * boot (rd.vge.agent=DEVICE). With the test root module, like dracutInitrd.
 */
export function dracutOnDiskInitrd(deps: GuestDeps): string {
  x86Only(deps, "dracut");
  const script = join(REPO, "scripts/build-initrd.sh");
  const testModule = join(HERE, "59vge-testroot");
  const files = [script, ...filesUnder(join(REPO, "initrd/50vsock-guest-exec")), ...filesUnder(testModule), deps.agent, ...tools("busybox", "dracut")];
  const key = keyOf([deps.kver, deps.kroot, "agent-on-disk"], files);
  return cached("dracut-ondisk", key, (out) => [
    "bash", script, "-o", out, "--agent", deps.agent, "--kver", deps.kver, "--kroot", deps.kroot, "--agent-on-disk",
    "--module-dir", testModule, "--add", "vge-testroot",
  ]);
}

/** ext4 image of the test root (testroot-disk.sh), for root=/dev/vda; attach it with snapshot=on. */
export function testrootDisk(): string {
  const script = join(HERE, "testroot-disk.sh");
  const key = keyOf([], [script, join(HERE, "59vge-testroot/testroot-init.sh"), ...tools("busybox", "mkfs.ext4")]);
  return cached("testroot-disk", key, (out) => ["bash", script, "-o", out]);
}

/**
 * A systemd-based dracut initrd (modules systemd, systemd-initrd, dracut-systemd, rootfs-block and the
 * virtio_blk driver) with the vsock-guest-exec module: dracut's hooks then run from its services.
 * Boot it with root=/dev/vda and testrootDisk().
 */
export function dracutSystemdInitrd(deps: GuestDeps): string {
  x86Only(deps, "dracut-systemd");
  const script = join(REPO, "scripts/build-initrd.sh");
  const files = [script, ...filesUnder(join(REPO, "initrd/50vsock-guest-exec")), deps.agent, ...tools("dracut")];
  const key = keyOf([deps.kver, deps.kroot, "systemd"], files);
  return cached("dracut-systemd", key, (out) => [
    "bash", script, "-o", out, "--agent", deps.agent, "--kver", deps.kver, "--kroot", deps.kroot,
    "--add", "systemd", "--add", "systemd-initrd", "--add", "dracut-systemd", "--add", "rootfs-block",
    "--", "--add-drivers", "virtio_blk",
  ]);
}

/**
 * dracutSystemdInitrd plus the test module vge-unit (58vge-unit): initrd/vsock-guest-exec.service under
 * the initrd's systemd (PID 1), started with a probe agent by rd.systemd.unit=vge-unit-test.target.
 */
export function dracutSystemdUnitInitrd(deps: GuestDeps): string {
  x86Only(deps, "dracut-systemd-unit");
  const script = join(REPO, "scripts/build-initrd.sh");
  const testModule = join(HERE, "58vge-unit");
  const unit = join(REPO, "initrd/vsock-guest-exec.service");
  const files = [script, unit, ...filesUnder(join(REPO, "initrd/50vsock-guest-exec")), ...filesUnder(testModule), deps.agent, ...tools("dracut")];
  const key = keyOf([deps.kver, deps.kroot, "systemd-unit"], files);
  return cached("dracut-systemd-unit", key, (out) => [
    "bash", script, "-o", out, "--agent", deps.agent, "--kver", deps.kver, "--kroot", deps.kroot,
    "--module-dir", testModule, "--add", "vge-unit",
    "--add", "systemd", "--add", "systemd-initrd", "--add", "dracut-systemd",
  ], { VGE_UNIT_FILE: unit });
}
