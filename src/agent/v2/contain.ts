// Containment of one execution (--cgroup DIR, --protect): where its processes are born, what they may
// take, how they all end, and what they used.
//
// Placement without a race: neither Bun.spawn nor posix_spawn can put a child into a cgroup, and a child
// moved after it started may already have forked. So the agent hops in: it moves ITSELF into the
// execution's leaf, spawns (the child is born there, as is everything it ever forks), and moves back.
// The window, documented in SECURITY.md: until the agent runs again after the spawn (measured under TCG:
// the child can run its first commands before that) the agent sits in the leaf: memory it faults in is
// charged to the leaf, pids.max counts the agent's threads (so it is raised by that many, then set
// exactly), and cpu.max is set only once the agent is out (a throttled leaf would stall the agent).
// The agent keeps its OOM score of -1000 throughout, so a leaf OOM in that window never picks it.
//
// The OOM score: a child inherits the agent's -1000 at fork, and no code of ours runs in it between fork
// and exec. So with --protect the program is started through a one-line /bin/sh trampoline that sets its
// own score to 0 and execs the program: the user's program never runs with the immunity. (Setting the
// agent to 0 around the spawn instead was measured to leave the agent at 0 while the child already ran.)
import { accessSync, constants, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ExecLimits, ExecUsage } from "../../protocol/v2/messages.ts";
import { CgroupTree, type CgroupFs, type Leaf } from "./cgroup.ts";
import { UserError } from "./users.ts";
import { nodeProcFs, Tracking, type ProcFs, type Tracked } from "./track.ts";
import { setChildSubreaper } from "../../sys/index.ts";

/** The OOM score of a protected agent: never chosen by the OOM killer. */
export const PROTECTED_OOM_SCORE = -1000;
/**
 * The agent's own OOM score file. Tests on a development machine must never write the real one: they
 * point VGE_TEST_OOM_SCORE_ADJ_FILE at a file in a temp directory.
 */
const OOM_FILE = process.env.VGE_TEST_OOM_SCORE_ADJ_FILE ?? "/proc/self/oom_score_adj";

export interface ContainConfig {
  tree?: CgroupTree;
  /** The agent's OOM score is PROTECTED_OOM_SCORE; children are born at 0. */
  protect: boolean;
  oomFile: string;
  /** Without a cgroup tree: the agent is the child subreaper and tracks each execution's processes (track.ts). */
  tracking?: Tracking;
}

let config: ContainConfig = { protect: false, oomFile: OOM_FILE };

/** Where cgroup2 is mounted on every system that has it (systemd, the dracut module, busybox /init). */
export const CGROUP_MOUNT = "/sys/fs/cgroup";

/**
 * `--cgroup self`: the agent's own cgroup (from /proc/self/cgroup's "0::PATH" line), as under a systemd unit
 * with Delegate=yes, where the unit's cgroup is the agent's to divide.
 */
export function ownCgroupDir(procSelfCgroup: string, mount = CGROUP_MOUNT): string {
  const line = procSelfCgroup.split("\n").find((l) => l.startsWith("0::"));
  if (!line) throw new Error("--cgroup self: this process is not in a cgroup v2 hierarchy (no 0:: line in /proc/self/cgroup)");
  const path = line.slice(3).trim();
  return path === "/" ? mount : `${mount}${path}`;
}

/**
 * Called once at start (main.ts); throws with a clear message if it cannot do what --cgroup DIR or --protect
 * ask. `--cgroup self` where the agent's cgroup cannot be divided (cgroup v1, no delegation) only warns:
 * it is the unit file's default, and an agent that refuses to start would leave the guest unreachable.
 * Without a cgroup tree the agent tracks processes instead (subreaper: false turns that off, for tests).
 */
export function setupContainment(opts: { cgroupDir?: string; protect?: boolean; fs?: CgroupFs; oomFile?: string; warn?: (m: string) => void; subreaper?: boolean; procFs?: ProcFs; procSelfCgroup?: () => string }): ContainConfig {
  const oomFile = opts.oomFile ?? OOM_FILE;
  const warn = opts.warn ?? (() => {});
  let tree: CgroupTree | undefined;
  if (opts.cgroupDir === "self") {
    try {
      tree = CgroupTree.setup(ownCgroupDir((opts.procSelfCgroup ?? (() => readFileSync("/proc/self/cgroup", "utf8")))()), process.pid, opts.fs, warn);
    } catch (e) {
      warn(`${(e as Error).message}; executions are not in cgroups: the agent tracks their processes instead (best effort, SECURITY.md), and refuses limits (ENOTSUP)`);
    }
  } else if (opts.cgroupDir !== undefined) tree = CgroupTree.setup(opts.cgroupDir, process.pid, opts.fs, warn);
  let tracking: Tracking | undefined;
  if (!tree && opts.subreaper !== false) {
    try {
      if (!opts.procFs) setChildSubreaper();
      tracking = new Tracking(opts.procFs ?? nodeProcFs);
    } catch (e) {
      warn(`cannot become the child subreaper (${(e as Error).message}): what an execution leaves running is not tracked`);
    }
  }
  if (opts.protect) {
    try {
      writeFileSync(oomFile, String(PROTECTED_OOM_SCORE));
    } catch (e) {
      throw new Error(`--protect: cannot set the agent's OOM score in ${oomFile}: ${(e as { code?: string }).code ?? (e as Error).message}`);
    }
  }
  config = { tree, protect: !!opts.protect, oomFile, tracking };
  return config;
}

/** For tests: the containment in force. */
export function containment(): ContainConfig {
  return config;
}

/** `sh -c` text of the trampoline: $1 the OOM score file, then the program (a path) and its arguments. */
const TRAMPOLINE = 'echo 0 > "$1" || exit 126; shift; exec "$@"';

/** Threads of this process now (pids.max counts them while the agent is inside a leaf). */
function ownThreads(): number {
  try {
    const m = /^Threads:\s+(\d+)/m.exec(readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) : 64;
  } catch {
    return 64;
  }
}

/** One execution's containment: a cgroup leaf, else its processes tracked, else (neither) nothing. */
export class ExecBox {
  /** Without a leaf: the execution's processes as tracked (track.ts), from its spawn on. */
  private tracked: Tracked | undefined;

  private constructor(
    private readonly cfg: ContainConfig,
    private readonly leaf: Leaf | undefined,
    private readonly limits: ExecLimits,
  ) {}

  /** The box for an execution with `limits`: UserError ENOTSUP for limits this agent cannot enforce. */
  static open(limits: ExecLimits | undefined, cfg: ContainConfig = config): ExecBox {
    const asked = limits && Object.keys(limits).length > 0 ? limits : undefined;
    if (asked && !cfg.tree) throw new UserError("ENOTSUP", "limits need an agent started with --cgroup DIR (cgroup v2); nothing was run");
    if (asked) {
      const no = cfg.tree!.unsupported(asked);
      if (no.length) throw new UserError("ENOTSUP", `this guest's cgroup has no controller for ${no.join(", ")}; nothing was run`);
    }
    if (!cfg.tree) return new ExecBox(cfg, undefined, {});
    let leaf: Leaf;
    try {
      leaf = cfg.tree.createLeaf();
    } catch (e) {
      throw new UserError((e as { code?: string }).code ?? "EIO", `cannot create the execution's cgroup: ${(e as Error).message}`);
    }
    try {
      leaf.setEarlyLimits(limits ?? {}, ownThreads() + 1);
    } catch (e) {
      void leaf.remove(0);
      throw new UserError("EINVAL", `cannot set the execution's limits: ${(e as Error).message}`);
    }
    return new ExecBox(cfg, leaf, limits ?? {});
  }

  /** True when the execution has a cgroup leaf of its own. */
  get contained(): boolean {
    return this.leaf !== undefined;
  }

  /**
   * The command line to spawn for `cmd`: itself, or with --protect the trampoline that resets the OOM
   * score first. The program is looked up here (PATH of `env`, relative to `cwd`), so that a missing one
   * is still a start failure (ENOENT, EACCES), not the trampoline's exit 127.
   */
  command(cmd: string[], env: Record<string, string>, cwd: string | undefined): string[] {
    if (!this.cfg.protect) return cmd;
    const prog = cmd[0]!;
    let path: string | null = prog;
    if (!prog.includes("/")) path = Bun.which(prog, { PATH: env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", cwd });
    if (path === null) throw Object.assign(new Error(`program not found: ${prog}`), { code: "ENOENT" });
    const abs = path.startsWith("/") ? path : join(cwd ?? process.cwd(), path);
    try {
      accessSync(abs, constants.X_OK);
    } catch (e) {
      throw Object.assign(new Error(`${(e as { code?: string }).code === "ENOENT" ? "program not found" : "cannot execute"}: ${prog}`), { code: (e as { code?: string }).code ?? "EACCES" });
    }
    return ["/bin/sh", "-c", TRAMPOLINE, "vge-exec", this.cfg.oomFile, abs, ...cmd.slice(1)];
  }

  /**
   * Runs `spawn` with the agent inside the leaf, so that the child is born there; see the top. Without a
   * leaf, the child (`child` of what spawn returned) is tracked from now on.
   */
  spawn<T>(spawn: () => T, child?: (t: T) => { pid: number; exited: Promise<unknown> }): T {
    const { leaf } = this;
    if (!leaf) {
      const made = spawn();
      const tracking = this.cfg.tracking;
      if (tracking && child) {
        const c = child(made);
        tracking.spawned(c.pid, c.exited);
        this.tracked = tracking.track(c.pid);
      }
      return made;
    }
    leaf.enter(process.pid);
    try {
      try {
        return spawn();
      } finally {
        this.goHome();
      }
    } finally {
      leaf.setLateLimits(this.limits);
    }
  }

  /** Back to DIR/agent; a failure is retried, and if it persists the leaf is never killed (it holds the agent). */
  private goHome(): void {
    const home = `${this.cfg.tree!.home}/cgroup.procs`;
    for (let i = 0; ; i++) {
      try {
        this.cfg.tree!.fs.write(home, String(process.pid));
        return;
      } catch (e) {
        if (i >= 3) {
          this.agentInside = true;
          throw e;
        }
      }
    }
  }

  private agentInside = false;

  /** SIGKILLs every process of the execution, however it detached itself (tracked: as far as it was seen). */
  killAll(): void {
    if (this.leaf && !this.agentInside) this.leaf.kill(process.pid);
    this.tracked?.killAll();
  }

  /**
   * The leader has exited (and was reaped). With a leaf: the tree ends with it. Tracked: what it left is
   * `owner`'s (the connection; undefined for a detached job), as its process group is (groups.ts).
   */
  leaderExited(owner: object | undefined): void {
    if (this.tracked) this.cfg.tracking!.handOver(this.tracked, owner);
    else this.killAll();
  }

  /**
   * The execution is over: what is left of its tree is killed (tracked: unless handed over when the
   * leader exited), the leaf emptied and removed; returns the
   * tree's usage (without a leaf: undefined, the caller falls back on rusage).
   */
  async close(): Promise<{ usage?: ExecUsage; oom?: boolean } | undefined> {
    const leaf = this.leaf;
    if (this.tracked && !this.tracked.leftoverOf) this.tracked.close();
    if (!leaf || this.agentInside) return undefined;
    leaf.kill(process.pid);
    const deadline = performance.now() + 5000;
    while (leaf.populated() && performance.now() < deadline) await Bun.sleep(5);
    // Read before rmdir: the files go with the leaf.
    const used = leaf.usage();
    await leaf.remove();
    return used;
  }
}
