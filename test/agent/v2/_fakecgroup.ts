// A fake cgroup v2 tree in a temp directory, behaving as the kernel's does for what the agent uses:
// mkdir makes the interface files, cgroup.procs moves a pid out of every other cgroup, cgroup.kill
// SIGKILLs the listed (real) processes, subtree_control only gives what cgroup.controllers offers,
// rmdir fails EBUSY while a live process is inside. It never touches this machine's own cgroups.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { CgroupFs } from "../../../src/agent/v2/cgroup.ts";

const errno = (code: string, msg: string) => Object.assign(new Error(`${code}: ${msg}`), { code });

/** True while `pid` runs (not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

export class FakeCgroupFs implements CgroupFs {
  /** Every write, as "relative/path=value", in order. */
  readonly writes: string[] = [];
  /** Files written into new cgroups; drop "cgroup.kill" to play a kernel before 5.14. */
  iface = ["cgroup.procs", "cgroup.kill", "cgroup.freeze", "cgroup.subtree_control", "memory.max", "pids.max", "cpu.max", "cpu.stat", "memory.peak", "memory.events"];
  /** Paths whose writes fail (EACCES). */
  readonly failing = new Set<string>();

  constructor(readonly root: string, offered = "cpu memory pids") {
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, "cgroup.controllers"), offered);
    writeFileSync(join(root, "cgroup.subtree_control"), "");
    writeFileSync(join(root, "cgroup.procs"), "");
  }

  private rel(p: string): string {
    return p.startsWith(this.root) ? p.slice(this.root.length + 1) : p;
  }

  /** Every cgroup directory under the root, the root included. */
  private all(dir = this.root): string[] {
    return [dir, ...readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).flatMap((d) => this.all(join(dir, d.name)))];
  }

  procsOf(dir: string): number[] {
    const f = join(dir, "cgroup.procs");
    if (!existsSync(f)) return [];
    return readFileSync(f, "utf8").split("\n").filter(Boolean).map(Number).filter(alive);
  }

  /** Where `pid` is (relative), or undefined. */
  whereIs(pid: number): string | undefined {
    const d = this.all().find((c) => this.procsOf(c).includes(pid));
    return d === undefined ? undefined : this.rel(d) || ".";
  }

  /** What the kernel does at fork: the child is where its parent is. */
  inherit(child: number, parent = process.pid): void {
    const d = this.all().find((c) => this.procsOf(c).includes(parent));
    if (d) this.place(d, child);
  }

  private place(dir: string, pid: number): void {
    for (const c of this.all()) {
      const f = join(c, "cgroup.procs");
      if (existsSync(f)) writeFileSync(f, this.procsOf(c).filter((p) => p !== pid).map((p) => `${p}\n`).join(""));
    }
    writeFileSync(join(dir, "cgroup.procs"), `${this.procsOf(dir).map((p) => `${p}\n`).join("")}${pid}\n`);
  }

  read(p: string): string {
    const name = basename(p);
    if (name === "cgroup.events") {
      if (!existsSync(dirname(p))) throw errno("ENOENT", p);
      return `populated ${this.procsOf(dirname(p)).length > 0 ? 1 : 0}\nfrozen 0\n`;
    }
    if (name === "cgroup.controllers" && dirname(p) !== this.root) {
      // What the parent gives down now, as the kernel shows it.
      if (!existsSync(p)) throw errno("ENOENT", p);
      return readFileSync(join(dirname(dirname(p)), "cgroup.subtree_control"), "utf8");
    }
    if (name === "cgroup.procs") {
      if (!existsSync(p)) throw errno("ENOENT", p);
      return this.procsOf(dirname(p)).map((x) => `${x}\n`).join("");
    }
    if (!existsSync(p)) throw errno("ENOENT", p);
    return readFileSync(p, "utf8");
  }

  write(p: string, text: string): void {
    const name = basename(p);
    const dir = dirname(p);
    if (this.failing.has(this.rel(p))) throw errno("EACCES", p);
    if (!existsSync(dir)) throw errno("ENOENT", p);
    if (name === "cgroup.kill") {
      if (!existsSync(p)) throw errno("ENOENT", p);
      const pids = this.procsOf(dir);
      // A kill of a cgroup holding the test runner itself would end the test run: fail loudly instead.
      if (pids.includes(process.pid)) throw new Error(`fake cgroup: cgroup.kill of ${this.rel(dir)} would kill the test process`);
      for (const pid of pids) process.kill(pid, "SIGKILL");
    } else if (name === "cgroup.procs") {
      this.place(dir, Number(text));
    } else if (name === "cgroup.subtree_control") {
      const offered = this.read(join(dir, "cgroup.controllers")).trim().split(/\s+/);
      const c = text.replace(/^\+/, "");
      if (!offered.includes(c)) throw errno("ENOENT", `${c} not offered in ${this.rel(dir)}`);
      const cur = readFileSync(p, "utf8").trim().split(/\s+/).filter(Boolean);
      writeFileSync(p, [...new Set([...cur, c])].join(" "));
    } else {
      if (!existsSync(p)) throw errno("ENOENT", p);
      writeFileSync(p, text);
    }
    this.writes.push(`${this.rel(p)}=${text}`);
  }

  mkdir(p: string): void {
    if (existsSync(p)) throw errno("EEXIST", p);
    if (!existsSync(join(dirname(p), "cgroup.procs"))) throw errno("ENOENT", p);
    mkdirSync(p);
    const given = readFileSync(join(dirname(p), "cgroup.subtree_control"), "utf8");
    writeFileSync(join(p, "cgroup.controllers"), given);
    for (const f of this.iface) writeFileSync(join(p, f), f === "cpu.stat" ? "usage_usec 0\nuser_usec 0\nsystem_usec 0\n" : f === "memory.events" ? "oom 0\noom_kill 0\n" : f === "memory.peak" ? "0\n" : "");
  }

  rmdir(p: string): void {
    if (!existsSync(p)) throw errno("ENOENT", p);
    if (this.procsOf(p).length > 0) throw errno("EBUSY", p);
    if (readdirSync(p, { withFileTypes: true }).some((d) => d.isDirectory())) throw errno("EBUSY", p);
    rmSync(p, { recursive: true });
  }

  list(p: string): string[] {
    return readdirSync(p, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  }
}
