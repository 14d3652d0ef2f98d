// The agent's cgroup v2 subtree (--cgroup DIR): the agent itself in DIR/agent (cgroup v2 lets a cgroup
// that gives controllers to children hold no process), and one leaf DIR/exec-N per execution. A leaf
// carries the execution's limits, ends with it (every process in it killed, however it detached itself:
// setsid, double fork) and is removed. All file access goes through CgroupFs, so that the logic runs in
// tests against a fake tree in a temp directory: this machine's own cgroups are never touched.
import { mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ExecLimits, ExecUsage } from "../../protocol/v2/messages.ts";

/** The few file operations a cgroup tree needs; `nodeCgroupFs` is the real one. */
export interface CgroupFs {
  read(path: string): string;
  write(path: string, text: string): void;
  mkdir(path: string): void;
  rmdir(path: string): void;
  list(path: string): string[];
}

export const nodeCgroupFs: CgroupFs = {
  read: (p) => readFileSync(p, "utf8"),
  // One write(2) per value: cgroup files take one value per write.
  write: (p, t) => writeFileSync(p, t),
  mkdir: (p) => mkdirSync(p),
  rmdir: (p) => rmdirSync(p),
  list: (p) => readdirSync(p, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name),
};

/** Controllers the agent gives its leaves, when the kernel and the parent offer them. */
export const CONTROLLERS = ["memory", "pids", "cpu"] as const;
export type Controller = (typeof CONTROLLERS)[number];
/** cpu.max's period, µs: 100 ms, the kernel's default. */
export const CPU_PERIOD_US = 100_000;
/** How long a leaf may take to empty after its kill before it is left behind (and cleaned at the next start). */
export const EMPTY_WAIT_MS = 5000;
const LEAF = /^exec-\d+$/;

const errCode = (e: unknown) => (e as { code?: string }).code ?? "EIO";

/** A "key value" file (cgroup.events, cpu.stat, memory.events) as a map. */
export function keyed(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) m.set(k, Number(v));
  }
  return m;
}

export class CgroupTree {
  /** Controllers enabled for the leaves. */
  readonly controllers: ReadonlySet<Controller>;
  private next = 1;

  private constructor(
    readonly dir: string,
    readonly fs: CgroupFs,
    controllers: Set<Controller>,
  ) {
    this.controllers = controllers;
  }

  /**
   * Takes DIR over: creates it if missing, removes leaves an earlier agent left behind (killing what is
   * still in them), moves this process into DIR/agent, enables what it can of CONTROLLERS for the leaves.
   * Throws with the failing step named: the agent was told to contain and must not run uncontained.
   */
  static setup(dir: string, pid: number, fs: CgroupFs = nodeCgroupFs, warn: (m: string) => void = () => {}): CgroupTree {
    const step = <T>(what: string, fn: () => T): T => {
      try {
        return fn();
      } catch (e) {
        throw new Error(`--cgroup ${dir}: ${what}: ${errCode(e)} (${(e as Error).message})`);
      }
    };
    step("cannot create it (is cgroup2 mounted there? see initrd/README.md)", () => {
      try {
        fs.mkdir(dir);
      } catch (e) {
        if (errCode(e) !== "EEXIST") throw e;
      }
    });
    step("cgroup.procs not found: not a cgroup v2 directory", () => fs.read(join(dir, "cgroup.procs")));
    const tree = new CgroupTree(dir, fs, new Set());
    for (const name of step("cannot list it", () => fs.list(dir))) if (LEAF.test(name)) tree.leafAt(name).destroy(warn);
    step("cannot create its agent leaf", () => {
      try {
        fs.mkdir(join(dir, "agent"));
      } catch (e) {
        if (errCode(e) !== "EEXIST") throw e;
      }
    });
    step("cannot move the agent into DIR/agent", () => fs.write(join(dir, "agent", "cgroup.procs"), String(pid)));
    const offered = (d: string) => new Set(step(`cannot read ${d}/cgroup.controllers`, () => fs.read(join(d, "cgroup.controllers"))).trim().split(/\s+/));
    let have = offered(dir);
    const missing = CONTROLLERS.filter((c) => !have.has(c));
    if (missing.length > 0) {
      // The parent may have them without giving them down (a fresh cgroup2 mount gives nothing): ask once.
      const parent = join(dir, "..");
      for (const c of missing) {
        try {
          fs.write(join(parent, "cgroup.subtree_control"), `+${c}`);
        } catch {
          // Not ours to give (a delegated subtree without it, or processes in the parent): go without.
        }
      }
      have = offered(dir);
    }
    const enabled = new Set<Controller>();
    for (const c of CONTROLLERS) {
      if (!have.has(c)) continue;
      try {
        fs.write(join(dir, "cgroup.subtree_control"), `+${c}`);
        enabled.add(c);
      } catch (e) {
        warn(`--cgroup ${dir}: cannot enable the ${c} controller for executions: ${errCode(e)}`);
      }
    }
    const absent = CONTROLLERS.filter((c) => !enabled.has(c));
    if (absent.length) warn(`--cgroup ${dir}: no ${absent.join(", ")} controller: executions asking for ${absent.map((c) => (c === "memory" ? "memoryBytes" : c)).join(", ")} limits are refused (ENOTSUP)`);
    return new CgroupTree(dir, fs, enabled);
  }

  /** The agent's own cgroup.procs: where it goes back after each spawn. */
  get home(): string {
    return join(this.dir, "agent");
  }

  /** A new, empty leaf; throws if it cannot be made. */
  createLeaf(): Leaf {
    for (let tries = 0; ; tries++) {
      const name = `exec-${this.next++}`;
      try {
        this.fs.mkdir(join(this.dir, name));
        return this.leafAt(name);
      } catch (e) {
        // A leaf of that name still there (one that would not empty): take the next number.
        if (errCode(e) !== "EEXIST" || tries > 1000) throw e;
      }
    }
  }

  /** Which of `limits` this tree cannot enforce, as the limit names. */
  unsupported(limits: ExecLimits): string[] {
    const need: [keyof ExecLimits, Controller][] = [["memoryBytes", "memory"], ["pids", "pids"], ["cpu", "cpu"]];
    return need.filter(([k, c]) => limits[k] !== undefined && !this.controllers.has(c)).map(([k]) => k);
  }

  private leafAt(name: string): Leaf {
    return new Leaf(join(this.dir, name), this);
  }
}

export class Leaf {
  private removed = false;

  constructor(
    readonly path: string,
    private readonly tree: CgroupTree,
  ) {}

  private get fs(): CgroupFs {
    return this.tree.fs;
  }

  private file(name: string): string {
    return join(this.path, name);
  }

  /** Writes memory.max and pids.max: the limits that must hold from the first instruction of the child. */
  setEarlyLimits(limits: ExecLimits, extraPids = 0): void {
    if (limits.memoryBytes !== undefined) this.fs.write(this.file("memory.max"), String(limits.memoryBytes));
    if (limits.pids !== undefined) this.fs.write(this.file("pids.max"), String(limits.pids + extraPids));
  }

  /**
   * The limits written once the agent has left the leaf again: pids.max without the agent's threads, and
   * cpu.max (a throttled leaf would stall the agent itself while it is inside).
   */
  setLateLimits(limits: ExecLimits): void {
    if (limits.pids !== undefined) this.fs.write(this.file("pids.max"), String(limits.pids));
    if (limits.cpu !== undefined) this.fs.write(this.file("cpu.max"), `${Math.max(1000, Math.round(limits.cpu * CPU_PERIOD_US))} ${CPU_PERIOD_US}`);
  }

  /** Moves process `pid` (all its threads) into this leaf. */
  enter(pid: number): void {
    this.fs.write(this.file("cgroup.procs"), String(pid));
  }

  /** The processes in the leaf now. */
  pids(): number[] {
    try {
      return this.fs.read(this.file("cgroup.procs")).split("\n").filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** True while some process is in the leaf (cgroup.events "populated"). */
  populated(): boolean {
    try {
      return keyed(this.fs.read(this.file("cgroup.events"))).get("populated") !== 0;
    } catch {
      return this.pids().length > 0;
    }
  }

  /**
   * SIGKILLs every process in the leaf: cgroup.kill (Linux 5.14+) in one write, or before it, freeze the
   * leaf (nothing forks while frozen), SIGKILL each process listed, thaw; `self` is never killed (the
   * caller makes sure it is not inside: contain.ts).
   */
  kill(self: number): void {
    if (this.removed) return;
    try {
      this.fs.write(this.file("cgroup.kill"), "1");
      return;
    } catch {
      // No cgroup.kill (before 5.14), or refused: the freezer does the same, more slowly.
    }
    try {
      this.fs.write(this.file("cgroup.freeze"), "1");
    } catch {
      // No freezer either (very old kernel): kill what is listed, a fork may slip through.
    }
    for (let round = 0; round < 16; round++) {
      const pids = this.pids().filter((p) => p !== self);
      if (pids.length === 0) break;
      for (const p of pids) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          // Gone already.
        }
      }
    }
    try {
      this.fs.write(this.file("cgroup.freeze"), "0");
    } catch {
      // As above.
    }
  }

  /** What the tree used, from the leaf's own accounting; undefined fields the kernel does not offer. */
  usage(): { usage?: ExecUsage; oom?: boolean } {
    const read = (name: string) => {
      try {
        return this.fs.read(this.file(name));
      } catch {
        return undefined;
      }
    };
    const cpu = read("cpu.stat");
    if (cpu === undefined) return {};
    const stat = keyed(cpu);
    const peak = read("memory.peak");
    const events = read("memory.events");
    const out: { usage?: ExecUsage; oom?: boolean } = {
      usage: { userUsec: stat.get("user_usec") ?? 0, systemUsec: stat.get("system_usec") ?? 0, ...(peak !== undefined && /^\d+/.test(peak) ? { memoryPeak: Number(peak.trim()) } : {}), from: "cgroup" },
    };
    if (events !== undefined) out.oom = (keyed(events).get("oom_kill") ?? 0) > 0;
    return out;
  }

  /** Waits (bounded) until nothing is left in the leaf, then removes it; true if removed. */
  async remove(waitMs = EMPTY_WAIT_MS): Promise<boolean> {
    if (this.removed) return true;
    const until = performance.now() + waitMs;
    for (let delay = 1; this.populated() && performance.now() < until; delay = Math.min(delay * 2, 50)) await Bun.sleep(delay);
    return this.rmdir();
  }

  /** Kills what is in the leaf and removes it, without waiting long: for leaves an earlier agent left. */
  destroy(warn: (m: string) => void): void {
    this.kill(-1);
    const until = performance.now() + 1000;
    while (this.populated() && performance.now() < until) Bun.sleepSync(5);
    if (!this.rmdir()) warn(`cannot remove the stale cgroup ${this.path}`);
  }

  private rmdir(): boolean {
    try {
      this.fs.rmdir(this.path);
      this.removed = true;
      return true;
    } catch (e) {
      if (errCode(e) === "ENOENT") return (this.removed = true);
      return false;
    }
  }
}
