// Containment without cgroups in a real guest (busybox initrd, no cgroup2 given to the agent): the agent
// runs --listen :1024 --protect, is the child subreaper and tracks each execution's processes
// (src/agent/v2/track.ts). A setsid'd, double-forked daemon (reparented to the agent) dies on timeout,
// on kill(), at the end of the host's connection (also what a normally exited leader left), and on the
// agent's SIGTERM; what the agent adopted is reaped: no zombie among its children. What this cannot do is
// in SECURITY.md "Without cgroups".
import { expect, test } from "bun:test";
import { connect, type Guest as HostGuest } from "../../src/host/index.ts";
import { findGuestDeps, guestSkipReason, named, withGuest, within } from "../../scripts/qemu/harness.ts";
import { busyboxInitrd } from "../../scripts/qemu/images.ts";
import { daemonCmd, sh, stateOf, waitDead } from "./_daemons.ts";

const skip = guestSkipReason();
const STEP = 90_000;
const CALL = 60_000;
/** The agent's zombie children: what it adopted and did not reap. */
const zombiesOf = (pid: number) => `for s in /proc/[0-9]*/stat; do read -r l < $s 2>/dev/null || continue; set -- \${l##*) }; [ "$2" = ${pid} ] && [ "$1" = Z ] && echo $s; done; echo end`;

async function noZombies(g: HostGuest, agentPid: number): Promise<string> {
  let out = "";
  for (let i = 0; i < 20; i++) {
    out = (await sh(g, zombiesOf(agentPid), "zombies")).stdoutText;
    if (out === "end\n") break;
    await Bun.sleep(250);
  }
  return out;
}

test.skipIf(!!skip)(named("track: without cgroups a setsid'd daemon dies on timeout, kill, connection end and SIGTERM, and is reaped", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const args = ["--listen", ":1024", "--protect"].join(",");
  await withGuest({ initrd: busyboxInitrd(found.deps), memoryMiB: 384, append: [`vge_args=${args}`, "vge_runs=2"], timeoutMs: 300_000 }, async (vm) => {
    await vm.start();
    const addr = `fc:${vm.uds}:1024`;
    const g = await within(connect(addr, { retryMs: 60_000 }), STEP, "connect");
    const agent = g.info.pid;
    try {
      // Not in a leaf: the agent's cgroup is whatever /init gave it; its children are born at OOM score 0.
      expect((await sh(g, "cat /proc/self/oom_score_adj", "score")).stdoutText).toBe("0\n");

      // 1. Timeout.
      const t = await sh(g, daemonCmd("/tmp/d1"), "timeout run", { timeoutMs: 2000 });
      expect({ status: t.status, signal: t.signal }).toEqual({ status: "timeout", signal: "SIGKILL" });
      expect(await waitDead(g, "/tmp/d1")).toBe("dead");

      // 2. kill() from the host.
      const p = g.exec({ shell: daemonCmd("/tmp/d2", "echo up; sleep 300") }, { stdin: "closed" });
      const reader = p.stdout.getReader();
      await within(reader.read(), CALL, "the daemon's start");
      reader.releaseLock();
      expect((await sh(g, `${stateOf("/tmp/d2")}; cat /proc/$(cat /tmp/d2)/stat`, "d2 adopted")).stdoutText).toMatch(new RegExp(`^alive\\n\\d+ \\(sleep\\) S ${agent} `));
      p.kill("SIGKILL");
      expect((await within(p.result, CALL, "kill result")).status).toBe("signaled");
      expect(await waitDead(g, "/tmp/d2")).toBe("dead");
      expect(await noZombies(g, agent)).toBe("end\n");

      // 3. The connection ends: a running execution's daemon, and what a finished one left, both die.
      const g2 = await within(connect(addr), STEP, "second connection");
      const left = await sh(g2, daemonCmd("/tmp/d3", "exit 0"), "leader exits, daemon left");
      expect(left.code).toBe(0);
      const p4 = g2.exec({ shell: daemonCmd("/tmp/d4", "echo up; sleep 300") }, { stdin: "closed" });
      const r4 = p4.stdout.getReader();
      await within(r4.read(), CALL, "the second daemon's start");
      r4.releaseLock();
      expect((await sh(g, `${stateOf("/tmp/d3")}; ${stateOf("/tmp/d4")}`, "d3 d4 alive")).stdoutText).toBe("alive\nalive\n");
      g2.close();
      expect(await waitDead(g, "/tmp/d3")).toBe("dead");
      expect(await waitDead(g, "/tmp/d4")).toBe("dead");
      expect(await noZombies(g, agent)).toBe("end\n");

      // 4. The agent's SIGTERM with a detached job's daemon running: killed too.
      const job = g.exec({ shell: daemonCmd("/tmp/d9") }, { stdin: "closed", detach: { tag: "d9" } });
      expect(await within(job.started, CALL, "job start")).not.toBeNull();
      for (let i = 0; i < 40 && (await sh(g, stateOf("/tmp/d9"), "d9")).stdoutText.trim() !== "alive"; i++) await Bun.sleep(250);
      await sh(g, `kill -TERM ${agent}`, "SIGTERM the agent").catch(() => undefined);
      await vm.waitFor(/agent exited 143 run=1/, STEP);
    } finally {
      g.close();
    }
    await vm.waitFor(/agent start run=2/, STEP);
    const g3 = await within(connect(addr, { retryMs: 60_000 }), STEP, "the next agent");
    try {
      expect(await waitDead(g3, "/tmp/d9")).toBe("dead");
    } finally {
      g3.close();
    }
  });
}, 360_000);
