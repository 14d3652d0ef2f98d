// Contained executions in a real guest (busybox initrd, cgroup2 mounted by /init): the agent runs with
// --listen --cgroup /sys/fs/cgroup/vge --protect and the host library dials in through vhost-device-vsock.
// Each check is what the process group alone cannot do: a setsid'd, double-forked daemon dies on timeout,
// on kill(), at the end of the host's connection and when its leader exits; no leaf is left behind;
// limits hold (memory → killed alone with oom:true, a fork bomb under pids 64 → contained while other
// executions run); the agent is at OOM score -1000, what it runs at 0; a guest-wide OOM with no limit
// kills the command, never the agent. Faults in the same boot: ENOSPC
// during PUT and PUTDIR into a small tmpfs; the host SIGKILLed mid-PUTDIR; the agent's SIGTERM with a
// detached job's daemon running (busybox /init starts the agent again: no stale leaf).
import { expect, test } from "bun:test";
import { connect, type Guest as HostGuest } from "../../src/host/index.ts";
import { findGuestDeps, guestSkipReason, named, withGuest, within } from "../../scripts/qemu/harness.ts";
import { busyboxInitrd } from "../../scripts/qemu/images.ts";
import { daemonCmd, sh, stateOf, waitDead } from "./_daemons.ts";

const skip = guestSkipReason();
const STEP = 90_000;
const CALL = 60_000;
const CG = "/sys/fs/cgroup/vge";

test.skipIf(!!skip)(named("contain: setsid'd daemons die on timeout, kill, connection end and leader exit; leaves removed; memory and pids limits; OOM scores", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const args = ["--listen", ":1024", "--cgroup", CG, "--protect"].join(",");
  await withGuest({ initrd: busyboxInitrd(found.deps), memoryMiB: 384, append: [`vge_args=${args}`, "vge_cgroup2=1", "vge_runs=2"], timeoutMs: 420_000 }, async (vm) => {
    await vm.start();
    await vm.waitFor("executions are contained in cgroups", STEP);
    const addr = `fc:${vm.uds}:1024`;
    const g = await within(connect(addr, { retryMs: 60_000 }), STEP, "connect");
    try {
      // The agent: OOM score -1000, in its own leaf; what it runs: score 0, in a leaf of its own.
      const self = await sh(g, `cat /proc/${g.info.pid}/oom_score_adj; cat /proc/${g.info.pid}/cgroup; cat /proc/self/oom_score_adj; cat /proc/self/cgroup; cat ${CG}/cgroup.subtree_control`, "facts");
      const [agentAdj, agentCg, childAdj, childCg, ctl] = self.stdoutText.trim().split("\n");
      expect({ agentAdj, agentCg, childAdj }).toEqual({ agentAdj: "-1000", agentCg: "0::/vge/agent", childAdj: "0" });
      expect(childCg).toMatch(/^0::\/vge\/exec-\d+$/);
      expect(ctl!.split(" ").sort()).toEqual(["cpu", "memory", "pids"]);

      // 1. Timeout: the leader and the setsid'd daemon both end.
      const t = await sh(g, daemonCmd("/tmp/d1"), "timeout run", { timeoutMs: 2000 });
      expect({ status: t.status, signal: t.signal }).toEqual({ status: "timeout", signal: "SIGKILL" });
      expect(await waitDead(g, "/tmp/d1")).toBe("dead");

      // 2. kill() from the host (SIGKILL).
      const p = g.exec({ shell: daemonCmd("/tmp/d2", "echo up; sleep 300") }, { stdin: "closed" });
      const reader = p.stdout.getReader();
      await within(reader.read(), CALL, "the daemon's start");
      reader.releaseLock();
      p.kill("SIGKILL");
      expect((await within(p.result, CALL, "kill result")).status).toBe("signaled");
      expect(await waitDead(g, "/tmp/d2")).toBe("dead");

      // 3. The leader exits normally: what it left running ends with it.
      const e = await sh(g, daemonCmd("/tmp/d3", "exit 0"), "leader exit");
      expect(e.code).toBe(0);
      expect(await waitDead(g, "/tmp/d3")).toBe("dead");

      // 4. The connection ends (not detached): its execution's whole tree is killed.
      const g2 = await within(connect(addr), STEP, "second connection");
      const p2 = g2.exec({ shell: daemonCmd("/tmp/d4", "echo up; sleep 300") }, { stdin: "closed" });
      const r2 = p2.stdout.getReader();
      await within(r2.read(), CALL, "the second daemon's start");
      r2.releaseLock();
      expect((await sh(g, stateOf("/tmp/d4"), "d4 alive")).stdoutText.trim()).toBe("alive");
      g2.close();
      expect(await waitDead(g, "/tmp/d4")).toBe("dead");

      // 5. No leaf left but the one running this look.
      const leaves = (await sh(g, `ls ${CG} | grep '^exec-'`, "leaves")).stdoutText.trim().split("\n");
      expect(leaves.length).toBe(1);

      // 6. Memory limit: the allocator is killed alone, oom:true; the agent answers at once after.
      const hog = "head -c 400000000 /dev/zero | tr '\\0' a | sort > /dev/null";
      const m = await sh(g, hog, "memory hog", { limits: { memoryBytes: 64 * 1024 * 1024 }, timeoutMs: 120_000 });
      expect(m.oom).toBe(true);
      expect(m.usage?.from).toBe("cgroup");
      expect(m.usage!.memoryPeak!).toBeGreaterThan(48 * 1024 * 1024);
      expect(m.usage!.memoryPeak!).toBeLessThanOrEqual(64 * 1024 * 1024);
      const t0 = performance.now();
      const next = await sh(g, "echo next", "after the hog");
      const nextMs = performance.now() - t0;
      expect(next.stdoutText).toBe("next\n");
      console.error(`contain: memory hog under 64 MiB: status ${m.status} ${m.signal ?? m.code}, peak ${m.usage!.memoryPeak}, next exec ${nextMs.toFixed(0)} ms`);

      // 7. A fork bomb under pids 64: contained (timeout ends it), and another execution runs meanwhile.
      const bomb = sh(g, "b() { b | b & }; b; sleep 300", "fork bomb", { limits: { pids: 64 }, timeoutMs: 8000 });
      await Bun.sleep(2000);
      const t1 = performance.now();
      const during = await sh(g, `cat ${CG}/exec-*/pids.current 2>/dev/null | sort -n | tail -1; echo ok`, "during the bomb");
      const duringMs = performance.now() - t1;
      const b = await bomb;
      expect(b.status).toBe("timeout");
      const [maxPids, ok] = during.stdoutText.trim().split("\n");
      expect(ok).toBe("ok");
      expect(Number(maxPids)).toBeLessThanOrEqual(64);
      const after = (await sh(g, `ls ${CG} | grep -c '^exec-'`, "leaves after the bomb")).stdoutText.trim();
      expect(after).toBe("1");
      console.error(`contain: fork bomb under pids 64: max pids.current ${maxPids}, an exec during it took ${duringMs.toFixed(0)} ms`);

      // 8. Usage of a plain run.
      const u = await sh(g, "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done", "cpu burn", { usage: true });
      expect(u.usage!.from).toBe("cgroup");
      expect(u.usage!.userUsec + u.usage!.systemUsec).toBeGreaterThan(10_000);

      // 9. A guest-wide OOM without a limit: one buffer larger than the guest's free memory (dd's bs; an
      // earlier `sort` hog spilled into tmpfs and thrashed instead). The kernel's OOM killer picks the
      // command, never the agent (-1000): same agent pid after, the next EXEC answered at once, and the
      // leaf's memory.events counts the kill, so EXIT says oom:true with no limit set.
      const agentPid = g.info.pid;
      const free = Number((await sh(g, "awk '/MemAvailable/ {print int($2/1024)}' /proc/meminfo", "free memory")).stdoutText.trim());
      const wild = await sh(g, `exec dd if=/dev/zero of=/dev/null bs=${free + 64}M count=1`, "hog without a limit", { timeoutMs: 120_000, usage: true });
      expect(wild).toMatchObject({ status: "signaled", signal: "SIGKILL", oom: true });
      const tWild = performance.now();
      const facts = await sh(g, `echo $PPID; dmesg | grep -i 'out of memory: killed process' | tail -1`, "after the guest-wide OOM");
      const afterWildMs = performance.now() - tWild;
      const [ppid, killed] = facts.stdoutText.trim().split("\n");
      expect(Number(ppid)).toBe(agentPid);
      expect(killed).toMatch(/\(dd\)/);
      expect(afterWildMs).toBeLessThan(10_000);
      console.error(`contain: guest-wide OOM (dd bs=${free + 64}M, no limit): ${killed?.replace(/^\[[^\]]*\] /, "").slice(0, 80)}; next exec ${afterWildMs.toFixed(0)} ms`);
      expect((await sh(g, "echo alive", "after all")).stdoutText).toBe("alive\n");
      expect(vm.saw("VGE-INIT: agent exited")).toBe(false);

      // ENOSPC during PUT and PUTDIR into a 4 MiB tmpfs: RESULT ENOSPC, no temporary file left, the space
      // back, the agent serves on.
      await sh(g, "mkdir -p /mnt/small && mount -t tmpfs -o size=4m tmpfs /mnt/small", "small tmpfs");
      const big = crypto.getRandomValues(new Uint8Array(6 * 1024 * 1024).subarray(0, 65536));
      const six = new Uint8Array(6 * 1024 * 1024);
      for (let off = 0; off < six.length; off += big.length) six.set(big, off);
      const put = await within(g.putFile("/mnt/small/big", six).then(() => "ok", (e) => (e as { errno?: string }).errno ?? String(e)), CALL, "put into a full tmpfs");
      expect(put).toBe("ENOSPC");
      const local = (await import("node:fs")).mkdtempSync(`${(await import("node:os")).tmpdir()}/vge-enospc-`);
      try {
        for (const n of ["a", "b", "c"]) await Bun.write(`${local}/${n}`, six.subarray(0, 2 * 1024 * 1024));
        const putDir = await within(g.putDir(local, "/mnt/small/tree").then(() => "ok", (e) => (e as { errno?: string }).errno ?? String(e)), CALL, "putDir into a full tmpfs");
        expect(putDir).toBe("ENOSPC");
      } finally {
        (await import("node:fs")).rmSync(local, { recursive: true, force: true });
      }
      const left = await sh(g, "find /mnt/small -type f | wc -l; df -k /mnt/small | tail -1 | awk '{print $3}'", "what is left");
      const [files, usedK] = left.stdoutText.trim().split("\n");
      console.error(`contain: ENOSPC: files left ${files}, used ${usedK} KiB`);
      // A partial tree may keep what fit under final names; no temporary (hidden) file may be left.
      const hidden = await sh(g, "find /mnt/small -name '.*' -type f | wc -l", "temporary files");
      expect(hidden.stdoutText.trim()).toBe("0");
      expect((await sh(g, "rm -rf /mnt/small/* && df -k /mnt/small | tail -1 | awk '{print $3}'", "space back")).stdoutText.trim()).toBe("0");

      // The host killed with SIGKILL in the middle of a PUTDIR (vge cp -r): no partial file under a final name,
      // no temporary file left once the agent has seen the connection go.
      const src = (await import("node:fs")).mkdtempSync(`${(await import("node:os")).tmpdir()}/vge-putdir-`);
      try {
        await Bun.write(`${src}/small`, "done\n");
        const chunk = crypto.getRandomValues(new Uint8Array(65536));
        const blob = new Uint8Array(48 * 1024 * 1024);
        for (let off = 0; off < blob.length; off += chunk.length) blob.set(chunk, off);
        await Bun.write(`${src}/zbig`, blob);
        const name = src.split("/").pop()!;
        await sh(g, "mkdir -p /tmp/pd", "target");
        const cp = Bun.spawn([process.execPath, "src/cli/vge.ts", "cp", "-r", addr, src, ":/tmp/pd/"], { cwd: `${import.meta.dir}/../..`, stdout: "ignore", stderr: "ignore", timeout: 120_000, killSignal: "SIGKILL" });
        // Killed once the big file is on its way (its temporary name shows up).
        let seen = "";
        for (let i = 0; i < 200 && !/zbig\.vge-/.test(seen); i++) {
          seen = (await sh(g, `ls -a /tmp/pd/${name} 2>/dev/null`, "watch the copy")).stdoutText;
          await Bun.sleep(50);
        }
        cp.kill("SIGKILL");
        await cp.exited;
        expect(seen).toMatch(/zbig\.vge-/);
        let files = "";
        for (let i = 0; i < 40; i++) {
          files = (await sh(g, `find /tmp/pd -type f`, "files after the kill")).stdoutText.trim();
          if (!/\.vge-/.test(files)) break;
          await Bun.sleep(250);
        }
        // "small" may have landed whole before the kill; the big one must not be there, whole or partial.
        expect(files.split("\n").filter(Boolean).map((f) => f.split("/").pop())).not.toContain("zbig");
        expect(files).not.toMatch(/\.vge-/);
        console.error(`contain: host SIGKILLed mid-PUTDIR: left ${JSON.stringify(files)}`);
      } finally {
        (await import("node:fs")).rmSync(src, { recursive: true, force: true });
      }

      // Per-exec cost of containment: 20 `true` in a row.
      const t2 = performance.now();
      for (let i = 0; i < 20; i++) await sh(g, "true", "true");
      console.error(`contain: 20 contained execs of true: ${((performance.now() - t2) / 20).toFixed(1)} ms each`);

      // The agent's SIGTERM: a detached job's setsid'd daemon is killed too; the next agent on the same
      // DIR (busybox /init runs it again) finds no leaf left over it cannot remove.
      const job = g.exec({ shell: daemonCmd("/tmp/d9") }, { stdin: "closed", detach: { tag: "d9" } });
      expect(await within(job.started, CALL, "job start")).not.toBeNull();
      for (let i = 0; i < 40 && (await sh(g, stateOf("/tmp/d9"), "d9")).stdoutText.trim() !== "alive"; i++) await Bun.sleep(250);
      await sh(g, `kill -TERM ${g.info.pid}`, "SIGTERM the agent").catch(() => undefined);
      await vm.waitFor(/agent exited 143 run=1/, STEP);
    } finally {
      g.close();
    }
    await vm.waitFor(/agent start run=2/, STEP);
    const g3 = await within(connect(addr, { retryMs: 60_000 }), STEP, "connect to the second agent");
    try {
      expect(await waitDead(g3, "/tmp/d9")).toBe("dead");
      expect((await sh(g3, `ls ${CG} | grep -c '^exec-'`, "leaves after a restart")).stdoutText.trim()).toBe("1");
    } finally {
      g3.close();
    }
  });
}, 480_000);

test.skipIf(!!skip)(named("contain in the dracut initrd: on by default (rd.vge.contain), a command in its own leaf at OOM score 0, the agent at -1000, a setsid'd daemon ends with its timeout", skip), async () => {
  const found = findGuestDeps();
  if ("missing" in found) throw new Error(found.missing);
  const { dracutInitrd } = await import("../../scripts/qemu/images.ts");
  await withGuest({ initrd: dracutInitrd(found.deps), append: ["root=vge-testroot", "rd.vge.mode=listen", "rd.vge.hold=120"] }, async (vm) => {
    await vm.start();
    await vm.waitFor("executions are contained in cgroups under /sys/fs/cgroup/vge", STEP);
    const g = await within(connect(`fc:${vm.uds}:1024`, { retryMs: 60_000 }), STEP, "connect");
    try {
      const r = await sh(g, `cat /proc/self/cgroup /proc/self/oom_score_adj /proc/${g.info.pid}/oom_score_adj`, "facts");
      const [cg, adj, agentAdj] = r.stdoutText.trim().split("\n");
      expect(cg).toMatch(/^0::\/vge\/exec-\d+$/);
      expect({ adj, agentAdj }).toEqual({ adj: "0", agentAdj: "-1000" });
      const t = await sh(g, daemonCmd("/run/d1"), "timeout run", { timeoutMs: 2000 });
      expect(t.status).toBe("timeout");
      expect(await waitDead(g, "/run/d1")).toBe("dead");
      await sh(g, "touch /run/vsock-guest-exec/release", "release");
    } finally {
      g.close();
    }
  });
}, 300_000);
