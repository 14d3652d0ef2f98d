// QEMU guest harness: boots a Linux guest with a virtio-vsock device under TCG and gives tests the
// host side of its vsock connections, without ever using AF_VSOCK on this machine.
//
//   const g = await Guest.create({ initrd, append: ["vge_args=--retry,30"] }); // backend up, no VM yet
//   const host = await g.listen(1024);   // the guest's connect() to host port 1024 lands here
//   await g.start();                     // QEMU boots
//   const conn = await host.accept(60_000);
//   await conn.write("echo MARK");        // disposable: no end() (see HostConnection.end)
//   await conn.closed;                   // the guest closes when the command has finished
//   await g.waitFor("VGE-INIT: poweroff");  // success is read from the serial log
//   await g.shutdown();                  // kills only the PIDs it started; keeps g.dir if a wait failed
//
// Pieces (one per guest, in a temp folder g.dir):
//   vhost-device-vsock --vm guest-cid=CID,socket=g.dir/vhost.sock,uds-path=g.uds   (the vhost-user backend)
//   qemu-system-x86_64 -accel tcg -cpu max … -device vhost-user-vsock-pci         (serial log: g.serialPath)
//   qemu-system-aarch64 -M virt -accel tcg -cpu max … -device vhost-user-vsock-pci  (deps from findGuestDeps("aarch64"))
// Host side, Firecracker style: the guest dialing host port P reaches the Unix socket `${g.uds}_${P}`
// (g.portPath(P), g.listen(P)); listen there BEFORE the guest dials. A host dialing a listening guest
// connects to g.uds and writes `CONNECT P\n` (g.connect(P); `vge … fc:${g.uds}:P` does the same).
// Both processes run under coreutils `timeout`, so they end even if the test process dies.
// With `restartableBackend`, QEMU also gets a QMP socket (qmp.ts) and g.restartBackend() SIGKILLs the backend
// and plugs a new one in (a fault test: every vsock connection of the guest is reset).
// QEMU's exit status means nothing (a panicking guest also exits 0): read markers with waitFor().
//
// Inputs (findGuestDeps in deps.ts): scripts/guest-deps.sh and `bun run build` provide them; override
// with VGE_QEMU, VGE_VHOST_VSOCK, VGE_KVER, VGE_KROOT, VGE_KERNEL, VGE_AGENT, VGE_GUEST_CACHE.
// Images (images.ts), cached by input hash under .cache/guest/images:
//   busyboxInitrd()        x86_64 or aarch64 (by deps.arch): /init (busybox-init.sh) runs the agent with vge_args=A,B,… (commas for spaces),
//                          vge_runs=N times; markers "VGE-INIT: up|agent start|agent exited N|poweroff"
//   dracutInitrd()         scripts/build-initrd.sh + test module vge-testroot: root=vge-testroot, markers
//                          "VGE-TESTROOT: …" from the real root's init (59vge-testroot)
//   dracutSystemdInitrd()  the same module in a systemd-based initrd; root=/dev/vda on testrootDisk()
// within(promise, ms, what) bounds a wait that has no timeout of its own (e.g. the host library's accept()).
// VGE_GUEST_KEEP=1 keeps every guest folder; VGE_REQUIRE_GUEST=1 turns "skip" into "fail" (CI).
import { type Subprocess, spawn } from "bun";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findGuestDeps, type GuestDeps } from "./deps.ts";
import { connectGuest, type HostConnection, HostListener, unixListening } from "./host.ts";
import { Qmp } from "./qmp.ts";

export { findGuestDeps, findRstBackend, type GuestArch, guestSkipReason, type GuestDeps, named } from "./deps.ts";
export { connectGuest, HostConnection, HostListener, legacyFrame, unixListening } from "./host.ts";

export interface GuestOptions {
  initrd: string;
  /** Kernel arguments after "console=ttyS0 panic=-1" (ttyAMA0 on aarch64). */
  append?: string[];
  /** QEMU's -cpu (default "max": the x64 agent needs x86-64-v2, which QEMU's default qemu64 lacks). */
  cpu?: string;
  /** Guest CID (default 3). */
  cid?: number;
  /** Default 512 (x86_64), 1024 (aarch64: the kernel unpacks the ~110 MiB initramfs into RAM slower there). */
  memoryMiB?: number;
  /** Hard limit on QEMU's life, from start() (default 240 s: a safety net; tests set their own bounds). */
  timeoutMs?: number;
  /** More QEMU arguments, e.g. ["-drive", "file=root.img,if=virtio,format=raw"]. */
  qemuArgs?: string[];
  /** A QMP socket and a named vsock device, so that restartBackend() can plug a new backend in. */
  restartableBackend?: boolean;
  /** Default: findGuestDeps() for x86_64. Its `arch` picks the QEMU machine. */
  deps?: GuestDeps;
}

const POLL_MS = 50;
const live = new Set<Guest>();
process.once("exit", () => {
  for (const g of live) g.killNow();
});
// Ctrl-C or SIGTERM: end every guest and WAIT until QEMU and the backend are gone (bounded: `timeout -k`
// SIGKILLs them 5 s after a SIGTERM they ignore), so that nothing outlives the script that started it.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    const all = Promise.all([...live].map((g) => g.shutdown()));
    void Promise.race([all, sleep(15_000)]).finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
  });
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

export class Guest {
  readonly dir: string;
  readonly uds: string;
  readonly cid: number;
  readonly serialPath: string;
  /** Set when a waitFor() failed: shutdown() then keeps `dir` for a look. */
  failed = false;
  private backend?: Subprocess;
  private qmp?: Qmp;
  private qemu?: Subprocess;
  private qemuExit?: Promise<number>;
  private startedAt = 0;
  private listeners: HostListener[] = [];
  private serialText = "";
  private serialOffset = 0;

  private constructor(readonly opts: GuestOptions, readonly deps: GuestDeps) {
    this.dir = mkdtempSync(join(tmpdir(), "vge-guest-"));
    this.uds = join(this.dir, "uds");
    this.cid = opts.cid ?? 3;
    this.serialPath = join(this.dir, "serial.log");
  }

  /** Starts the vhost-user backend and waits until it listens; no VM yet. */
  static async create(opts: GuestOptions): Promise<Guest> {
    let deps = opts.deps;
    if (!deps) {
      const found = findGuestDeps();
      if ("missing" in found) throw new Error(`cannot boot a guest: ${found.missing}`);
      deps = found.deps;
    }
    const g = new Guest(opts, deps);
    live.add(g);
    try {
      await g.startBackend();
    } catch (e) {
      g.failed = true;
      await g.shutdown();
      throw e;
    }
    return g;
  }

  /** create() then start(). */
  static async boot(opts: GuestOptions): Promise<Guest> {
    const g = await Guest.create(opts);
    await g.start();
    return g;
  }

  private get vhostSock() {
    return join(this.dir, "vhost.sock");
  }

  private async startBackend() {
    const limitS = Math.ceil((this.opts.timeoutMs ?? 240_000) / 1000) + 60;
    this.backend = spawn(
      ["timeout", "-k", "5", String(limitS), this.deps.backend, "--vm", `guest-cid=${this.cid},socket=${this.vhostSock},uds-path=${this.uds}`],
      { stdout: Bun.file(join(this.dir, "vhost.log")), stderr: Bun.file(join(this.dir, "vhost.err")), stdin: "ignore" },
    );
    // QEMU must be the backend's first and only client: watch /proc/net/unix, never connect to it.
    const until = Date.now() + 10_000;
    while (!unixListening(this.vhostSock)) {
      if (this.backend.exitCode !== null || Date.now() > until) {
        throw new Error(`vhost-device-vsock did not listen on ${this.vhostSock}: ${this.file("vhost.err")}`);
      }
      await sleep(POLL_MS);
    }
  }

  private get qmpSock() {
    return join(this.dir, "qmp.sock");
  }

  /**
   * The vsock backend dies and comes back: SIGKILLs vhost-device-vsock itself (by its PID, the child of
   * its `timeout` wrapper), leaves the device without a backend for `downMs`, then plugs a new one in.
   * QEMU 7.2's vhost-user-vsock-pci cannot take a new backend on the same device (no chardev reconnect),
   * so the harness does what a VMM restarting its vsock backend would: it unplugs the device (the guest's
   * transport goes: every vsock connection is reset), starts a new backend on the same sockets and plugs
   * a new device in (same CID). Needs `restartableBackend`. Resolves once the guest's driver has started
   * the new device.
   */
  async restartBackend(downMs = 0): Promise<void> {
    const wrapper = this.backend;
    if (!wrapper?.pid || !this.opts.restartableBackend) throw new Error("restartBackend needs a guest created with restartableBackend");
    const children = readFileSync(`/proc/${wrapper.pid}/task/${wrapper.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    if (children.length !== 1) throw new Error(`backend wrapper ${wrapper.pid} has children [${children}]`);
    process.kill(Number(children[0]), "SIGKILL");
    await wrapper.exited;
    await sleep(downMs);
    this.qmp ??= await Qmp.open(this.qmpSock);
    await this.qmp.execute("device_del", { id: "vsock0" });
    await this.qmp.waitEvent("DEVICE_DELETED", (d) => d.device === "vsock0", 60_000);
    await this.qmp.execute("chardev-remove", { id: "c0" });
    await this.startBackend();
    await this.qmp.execute("chardev-add", { id: "c0", backend: { type: "socket", data: { addr: { type: "unix", data: { path: this.vhostSock } }, server: false } } });
    await this.qmp.execute("device_add", { driver: "vhost-user-vsock-pci", chardev: "c0", id: "vsock0" });
    // Resolve once the guest's driver has set the new device up (QEMU started its vhost side): in an early
    // run without this wait, hosts that dialed right after device_add never got an answer to CONNECT.
    const until = Date.now() + 60_000;
    while (!(await this.qmp.execute("x-query-virtio-status", { path: "/machine/peripheral/vsock0/virtio-backend" })).started) {
      if (Date.now() > until) throw new Error("the guest did not start the re-plugged vsock device within 60 s");
      await sleep(POLL_MS);
    }
  }

  /** Boots QEMU. */
  async start(): Promise<void> {
    const arm = this.deps.arch === "aarch64";
    const mem = this.opts.memoryMiB ?? (arm ? 1024 : 512);
    const limitS = Math.ceil((this.opts.timeoutMs ?? 240_000) / 1000);
    const append = [arm ? "console=ttyAMA0" : "console=ttyS0", "panic=-1", ...(this.opts.append ?? [])].join(" ");
    // -no-reboot with panic=-1: a dying guest ends QEMU at once instead of rebooting forever.
    // memfd shared memory: the vhost-user backend maps the guest's RAM. On aarch64 the virt machine
    // (PL011 serial, PCIe host bridge) carries the same vhost-user-vsock-pci device.
    this.qemu = spawn(
      ["timeout", "-k", "5", String(limitS), this.deps.qemu,
        ...(arm ? ["-M", "virt"] : []),
        "-accel", "tcg", "-cpu", this.opts.cpu ?? "max", "-m", String(mem),
        "-nodefaults", "-display", "none", "-no-reboot",
        "-serial", `file:${this.serialPath}`,
        "-kernel", this.deps.kernel, "-initrd", this.opts.initrd, "-append", append,
        "-object", `memory-backend-memfd,id=mem,size=${mem}M,share=on`, "-machine", "memory-backend=mem",
        "-chardev", `socket,id=c0,path=${this.vhostSock}`, "-device", "vhost-user-vsock-pci,chardev=c0,id=vsock0",
        ...(this.opts.restartableBackend ? ["-qmp", `unix:${this.qmpSock},server=on,wait=off`] : []),
        ...(this.opts.qemuArgs ?? [])],
      { stdout: Bun.file(join(this.dir, "qemu.log")), stderr: Bun.file(join(this.dir, "qemu.err")), stdin: "ignore" },
    );
    this.startedAt = performance.now();
    this.qemuExit = this.qemu.exited;
  }

  /** Milliseconds since start(). */
  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  /** Where a guest's connection to host port `port` arrives. */
  portPath(port: number): string {
    return `${this.uds}_${port}`;
  }

  /** Listens for the guest's connections to host port `port` (closed by shutdown()). */
  async listen(port: number): Promise<HostListener> {
    const l = await HostListener.listen(this.portPath(port));
    this.listeners.push(l);
    return l;
  }

  /** Dials the guest's vsock port `port` (an agent with --listen) through the backend's CONNECT. */
  connect(port: number, timeoutMs = 60_000): Promise<HostConnection> {
    return connectGuest(this.uds, port, timeoutMs);
  }

  /** True while QEMU runs. */
  get running(): boolean {
    return this.qemu !== undefined && this.qemu.exitCode === null && this.qemu.signalCode === null;
  }

  /** Resolves when QEMU has exited (its status, which is no verdict). */
  exited(): Promise<number> {
    if (!this.qemuExit) throw new Error("guest not started");
    return this.qemuExit;
  }

  /** The serial log so far. */
  serial(): string {
    if (!existsSync(this.serialPath)) return this.serialText;
    const fd = openSync(this.serialPath, "r");
    try {
      const buf = Buffer.alloc(1 << 16);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.serialOffset);
        if (n <= 0) break;
        this.serialOffset += n;
        this.serialText += buf.subarray(0, n).toString("latin1");
      }
    } finally {
      closeSync(fd);
    }
    return this.serialText;
  }

  /**
   * Waits until `marker` shows in the serial log (substring or RegExp; searched from `from`, an index
   * in serial()). Resolves with the index just after the match, so that waits can be chained in order.
   * Rejects on timeout or when QEMU exits first, with the log's tail in the message.
   */
  async waitFor(marker: string | RegExp, timeoutMs = 60_000, from = 0): Promise<number> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const exitedBefore = !this.running;
      const text = this.serial();
      const end = matchEnd(text, marker, from);
      if (end !== undefined) return end;
      if (exitedBefore && this.qemu) return this.fail(`QEMU exited before "${marker}" appeared in the serial log`);
      if (Date.now() > until) return this.fail(`"${marker}" not in the serial log within ${timeoutMs} ms`);
      await sleep(POLL_MS);
    }
  }

  /** True when `marker` is in the serial log now. */
  saw(marker: string | RegExp): boolean {
    return matchEnd(this.serial(), marker, 0) !== undefined;
  }

  private fail(why: string): never {
    this.failed = true;
    const tail = this.serial().split("\n").slice(-40).join("\n");
    throw new Error(`${why}\n--- serial log tail (${this.serialPath}) ---\n${tail}\n--- qemu stderr ---\n${this.file("qemu.err")}`);
  }

  private file(name: string): string {
    try {
      return readFileSync(join(this.dir, name), "utf8").trim();
    } catch {
      return "";
    }
  }

  /** Ends QEMU and the backend (SIGTERM to the PIDs started here; `timeout -k` follows with SIGKILL). */
  async shutdown(): Promise<void> {
    for (const l of this.listeners) await l.close();
    this.listeners = [];
    this.qmp?.close();
    for (const p of [this.qemu, this.backend]) {
      if (p && p.exitCode === null && p.signalCode === null) p.kill("SIGTERM");
    }
    await Promise.all([this.qemu?.exited, this.backend?.exited]);
    this.serial();
    live.delete(this);
    if (this.failed || process.env.VGE_GUEST_KEEP === "1") {
      console.error(`guest files kept in ${this.dir}`);
    } else {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** Synchronous last resort at process exit. */
  killNow(): void {
    for (const p of [this.qemu, this.backend]) {
      if (p && p.exitCode === null) p.kill("SIGTERM");
    }
  }
}

/** Creates a guest, runs `fn`, and always shuts the guest down. */
export async function withGuest<T>(opts: GuestOptions, fn: (g: Guest) => Promise<T>): Promise<T> {
  const g = await Guest.create(opts);
  try {
    return await fn(g);
  } catch (e) {
    g.failed = true;
    throw e;
  } finally {
    await g.shutdown();
  }
}

/** `p`, or a rejection naming `what` once `ms` have passed (for promises that have no timeout of their own). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function matchEnd(text: string, marker: string | RegExp, from: number): number | undefined {
  if (typeof marker === "string") {
    const i = text.indexOf(marker, from);
    return i < 0 ? undefined : i + marker.length;
  }
  const re = new RegExp(marker.source, marker.flags.replace("g", "") + "g");
  re.lastIndex = from;
  const m = re.exec(text);
  return m ? m.index + m[0].length : undefined;
}
