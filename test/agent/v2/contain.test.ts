// Containment logic (src/agent/v2/cgroup.ts, contain.ts) against a fake cgroup v2 tree in a temp
// directory (_fakecgroup.ts) and a fake OOM score file: this machine's own cgroups and OOM scores are
// never touched. The real kernel's behaviour is proven in a guest (test/guest/contain.test.ts).
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CgroupTree } from "../../../src/agent/v2/cgroup.ts";
import { ExecBox, setupContainment } from "../../../src/agent/v2/contain.ts";
import { UserError } from "../../../src/agent/v2/users.ts";
import { FakeCgroupFs, alive } from "./_fakecgroup.ts";

let tmp: string;
let fs: FakeCgroupFs;
let oomFile: string;
const started: number[] = [];

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), "vge-cg-"));
  fs = new FakeCgroupFs(join(tmp, "root"));
  fs.write(join(fs.root, "cgroup.subtree_control"), "+memory");
  oomFile = join(tmp, "oom_score_adj");
  writeFileSync(oomFile, "0");
});

afterEach(() => {
  for (const p of started.splice(0)) {
    try {
      process.kill(p, "SIGKILL");
    } catch {}
  }
  rmSync(tmp, { recursive: true, force: true });
});

/** `sh` that starts a setsid'd, double-forked `sleep` and prints its pid: a daemon outside the group. */
function daemonize(): { leader: ReturnType<typeof Bun.spawn>; daemon: Promise<number> } {
  const leader = Bun.spawn(["sh", "-c", "setsid sh -c 'sleep 300 & echo $!' ; sleep 300"], { stdout: "pipe" });
  started.push(leader.pid);
  const daemon = (async () => {
    const reader = leader.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) text += new TextDecoder().decode((await reader.read()).value);
    reader.releaseLock();
    const pid = Number(text.trim());
    started.push(pid);
    return pid;
  })();
  return { leader, daemon };
}

async function gone(pid: number, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await Bun.sleep(20)) if (!alive(pid)) return true;
  return false;
}

test("setup: DIR made, the agent moved into DIR/agent, controllers given down (the parent asked once), a stale leaf killed and removed", async () => {
  const dir = join(fs.root, "vge");
  fs.mkdir(dir);
  fs.mkdir(join(dir, "exec-7"));
  const stale = Bun.spawn(["sleep", "300"]);
  started.push(stale.pid);
  fs.write(join(dir, "exec-7", "cgroup.procs"), String(stale.pid));

  const warnings: string[] = [];
  const c = setupContainment({ cgroupDir: dir, fs, oomFile, warn: (m) => warnings.push(m) });
  expect([...c.tree!.controllers].sort()).toEqual(["cpu", "memory", "pids"]);
  expect(fs.whereIs(process.pid)).toBe("vge/agent");
  expect(readFileSync(join(dir, "cgroup.subtree_control"), "utf8").split(" ").sort()).toEqual(["cpu", "memory", "pids"]);
  // memory was given by the root already; cpu and pids were asked for there.
  expect(fs.writes.filter((w) => w.startsWith("cgroup.subtree_control="))).toEqual(["cgroup.subtree_control=+memory", "cgroup.subtree_control=+pids", "cgroup.subtree_control=+cpu"]);
  expect(await gone(stale.pid)).toBe(true);
  expect(existsSync(join(dir, "exec-7"))).toBe(false);
  expect(warnings).toEqual([]);
  expect(readFileSync(oomFile, "utf8")).toBe("0"); // not asked to protect
});

test("setup refuses a directory that is not a cgroup, naming it", () => {
  mkdirSync(join(tmp, "plain"));
  expect(() => setupContainment({ cgroupDir: join(tmp, "plain"), fs: { ...fs, read: (p) => readFileSync(p, "utf8"), write: () => {}, mkdir: () => {}, rmdir: () => {}, list: () => [] }, oomFile })).toThrow(/--cgroup .*plain: cgroup.procs not found/);
});

test("limits without --cgroup, or without the controller, are ENOTSUP; nothing else changes", () => {
  const none = setupContainment({ oomFile, subreaper: false });
  expect(() => ExecBox.open({ memoryBytes: 64 << 20 }, none)).toThrow(UserError);
  try {
    ExecBox.open({ pids: 8 }, none);
  } catch (e) {
    expect((e as UserError).errno).toBe("ENOTSUP");
    expect((e as UserError).message).toMatch(/--cgroup/);
  }
  expect(ExecBox.open(undefined, none).contained).toBe(false);
  // A parent offering pids only: memory and cpu limits are refused by name.
  const only = new FakeCgroupFs(join(tmp, "r2"), "pids");
  const warnings: string[] = [];
  const c = setupContainment({ cgroupDir: join(only.root, "vge"), fs: only, oomFile, warn: (m) => warnings.push(m) });
  expect([...c.tree!.controllers]).toEqual(["pids"]);
  expect(warnings.join("\n")).toMatch(/no memory, cpu controller/);
  expect(() => ExecBox.open({ memoryBytes: 64 << 20, cpu: 0.5, pids: 4 }, c)).toThrow(/no controller for memoryBytes, cpu/);
  expect(ExecBox.open({ pids: 4 }, c).contained).toBe(true);
});

test("spawn: the agent is inside the leaf (its OOM score kept at -1000) exactly while the child is made; pids.max raised by its threads then exact, cpu.max only after", async () => {
  writeFileSync(oomFile, "0");
  const c = setupContainment({ cgroupDir: join(fs.root, "vge"), protect: true, fs, oomFile });
  expect(readFileSync(oomFile, "utf8")).toBe("-1000");
  const box = ExecBox.open({ memoryBytes: 32 << 20, pids: 16, cpu: 0.5 }, c);
  const leaf = join(fs.root, "vge", "exec-1");
  let inside: Record<string, string> = {};
  const child = box.spawn(() => {
    inside = {
      where: fs.whereIs(process.pid)!,
      oom: readFileSync(oomFile, "utf8"),
      memory: readFileSync(join(leaf, "memory.max"), "utf8"),
      pids: readFileSync(join(leaf, "pids.max"), "utf8"),
      cpu: readFileSync(join(leaf, "cpu.max"), "utf8"),
    };
    const p = Bun.spawn(["sleep", "300"]);
    fs.inherit(p.pid); // the kernel's part: a child starts where its parent is
    return p;
  });
  started.push(child.pid);
  const threads = Number(/^Threads:\s+(\d+)/m.exec(readFileSync("/proc/self/status", "utf8"))![1]);
  expect(inside.where).toBe("vge/exec-1");
  expect(inside.oom).toBe("-1000");
  expect(inside.memory).toBe(String(32 << 20));
  expect(Number(inside.pids)).toBeGreaterThanOrEqual(16 + 2);
  expect(Number(inside.pids)).toBeLessThanOrEqual(16 + threads + 8);
  expect(inside.cpu).toBe("");
  // After: the agent is home, protected again, the leaf holds the child alone, limits exact.
  expect(fs.whereIs(process.pid)).toBe("vge/agent");
  expect(readFileSync(oomFile, "utf8")).toBe("-1000");
  expect(fs.whereIs(child.pid)).toBe("vge/exec-1");
  expect(readFileSync(join(leaf, "pids.max"), "utf8")).toBe("16");
  expect(readFileSync(join(leaf, "cpu.max"), "utf8")).toBe("50000 100000");
  await box.close();
  expect(await gone(child.pid)).toBe(true);
  expect(existsSync(leaf)).toBe(false);
});

for (const kernel of ["5.14+ (cgroup.kill)", "before 5.14 (freeze, kill each)"]) {
  test(`killAll on ${kernel}: a setsid'd double-forked daemon dies with the leader, and the leaf is removed with the usage read`, async () => {
    if (kernel.startsWith("before")) fs.iface = fs.iface.filter((f) => f !== "cgroup.kill");
    const c = setupContainment({ cgroupDir: join(fs.root, "vge"), fs, oomFile });
    const box = ExecBox.open({ memoryBytes: 8 << 20 }, c);
    const { leader, daemon } = box.spawn(() => {
      const d = daemonize();
      fs.inherit(d.leader.pid);
      return d;
    });
    const dpid = await daemon;
    // The kernel's part again: everything the leader forks is in the leaf.
    fs.inherit(dpid, leader.pid);
    expect(alive(dpid)).toBe(true);
    // The daemon is in a session of its own: a process-group kill would miss it.
    expect(readFileSync(`/proc/${dpid}/stat`, "utf8").split(") ")[1]!.split(" ")[3]).not.toBe(String(leader.pid));
    const leaf = join(fs.root, "vge", "exec-1");
    writeFileSync(join(leaf, "cpu.stat"), "usage_usec 30\nuser_usec 10\nsystem_usec 20\n");
    writeFileSync(join(leaf, "memory.peak"), "12345\n");
    writeFileSync(join(leaf, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    box.killAll();
    expect(await gone(leader.pid)).toBe(true);
    expect(await gone(dpid)).toBe(true);
    const used = await box.close();
    expect(used).toEqual({ usage: { userUsec: 10, systemUsec: 20, memoryPeak: 12345, from: "cgroup" }, oom: true });
    expect(existsSync(leaf)).toBe(false);
    expect(fs.whereIs(process.pid)).toBe("vge/agent");
  });
}

test("if the agent cannot get back out of a leaf, the spawn fails and that leaf is never killed (it holds the agent)", () => {
  const c = setupContainment({ cgroupDir: join(fs.root, "vge"), fs, oomFile });
  const box = ExecBox.open({}, c);
  fs.failing.add("vge/agent/cgroup.procs");
  expect(() => box.spawn(() => 1)).toThrow(/EACCES/);
  expect(fs.whereIs(process.pid)).toBe("vge/exec-1");
  // The fake throws if cgroup.kill is written while the test process is inside: killAll must not try.
  box.killAll();
  fs.failing.clear();
  fs.write(join(fs.root, "vge/agent/cgroup.procs"), String(process.pid));
});

test("leaves are numbered past one that could not be removed", () => {
  const c = setupContainment({ cgroupDir: join(fs.root, "vge"), fs, oomFile });
  fs.mkdir(join(fs.root, "vge", "exec-1"));
  expect(c.tree!.createLeaf().path).toEndWith("exec-2");
  expect(CgroupTree.name).toBe("CgroupTree");
});

test("--protect: the program starts through a trampoline that sets its own OOM score to 0 first; a missing program is still ENOENT", async () => {
  const c = setupContainment({ protect: true, oomFile, subreaper: false });
  expect(readFileSync(oomFile, "utf8")).toBe("-1000");
  const box = ExecBox.open(undefined, c);
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
  // The test's stand-in for /proc/self/oom_score_adj is a temp file: the child writes 0 there, then runs.
  const child = Bun.spawn(box.command(["sh", "-c", `cat ${oomFile}; echo "$0 $1" "$#"`, "zero", "one"], env, undefined), { env, stdout: "pipe" });
  expect(await new Response(child.stdout).text()).toBe("0\nzero one 1\n");
  expect(await child.exited).toBe(0);
  const cmd = box.command(["true"], env, undefined);
  expect(cmd.slice(0, 2)).toEqual(["/bin/sh", "-c"]);
  expect(cmd.at(-1)).toMatch(/\/true$/);
  expect(() => box.command(["vge-no-such-program"], env, undefined)).toThrow(/program not found: vge-no-such-program/);
  expect(() => box.command(["/etc/passwd"], env, undefined)).toThrow(/cannot execute/);
  // Without --protect the command is left alone.
  expect(ExecBox.open(undefined, setupContainment({ oomFile, subreaper: false })).command(["true"], env, undefined)).toEqual(["true"]);
});

test("--cgroup self: the agent's own cgroup from /proc/self/cgroup", async () => {
  const { ownCgroupDir } = await import("../../../src/agent/v2/contain.ts");
  expect(ownCgroupDir("0::/system.slice/vsock-guest-exec.service\n")).toBe("/sys/fs/cgroup/system.slice/vsock-guest-exec.service");
  expect(ownCgroupDir("0::/\n")).toBe("/sys/fs/cgroup");
  expect(() => ownCgroupDir("1:name=systemd:/x\n")).toThrow(/not in a cgroup v2/);
});

test("--cgroup self where the agent's cgroup cannot be divided: one warning, no tree, processes tracked instead; limits ENOTSUP", () => {
  const warnings: string[] = [];
  const procFs = { self: 1, stat: () => undefined, children: () => [], kill: () => {}, reap: () => false, nowTicks: () => 1 };
  // cgroup v1 only: no "0::" line.
  const c = setupContainment({ cgroupDir: "self", oomFile, procFs, procSelfCgroup: () => "12:pids:/system.slice/x.service\n", warn: (m) => warnings.push(m) });
  expect(c.tree).toBeUndefined();
  expect(c.tracking).toBeDefined();
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(/--cgroup self: .*no 0:: line.*tracks their processes instead/);
  expect(() => ExecBox.open({ pids: 8 }, c)).toThrow(/--cgroup/);
  // An explicit DIR still refuses to start uncontained.
  expect(() => setupContainment({ cgroupDir: join(tmp, "plain"), fs: { ...fs, read: (p) => readFileSync(p, "utf8"), write: () => {}, mkdir: () => {}, rmdir: () => {}, list: () => [] }, oomFile, subreaper: false })).toThrow(/cgroup.procs not found/);
});
