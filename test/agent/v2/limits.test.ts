// EXEC limits and EXIT usage (PROTOCOL.md §5.2) against the compiled agent WITHOUT --cgroup (this machine's
// cgroups are not ours): limits are refused with ENOTSUP and nothing runs; usage comes from rusage; bad
// limit values are EPROTO. Checked through the TypeScript host and the Python implementation alike.
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { v2Fixture } from "./_fixture.ts";
import { T, V2Host, json } from "./_host.ts";
import { PYTHON, pyHost } from "./_pyhost.ts";

const fx = v2Fixture("vge-v2lim-");

test("limits without --cgroup: EXIT error ENOTSUP at once, no STARTED, nothing run; the connection goes on", async () => {
  for (const limits of [{ memoryBytes: 64 << 20 }, { pids: 8 }, { cpu: 0.5 }, { memoryBytes: 1 << 30, pids: 64, cpu: 2 }]) {
    const marker = fx.dir.file(`ran-${crypto.randomUUID()}`);
    const n = fx.id();
    const r = await fx.host.run(n, { argv: ["touch", marker], limits } as never);
    expect(r.exit).toMatchObject({ status: "error", errno: "ENOTSUP" });
    expect(String((r.exit as { message?: string }).message)).toMatch(/--cgroup/);
    expect(fx.host.frames.some((f) => f.type === T.STARTED && f.id === n)).toBe(false);
    expect(existsSync(marker)).toBe(false);
  }
  const ok = await fx.host.run(fx.id(), { argv: ["echo", "still"] });
  expect(ok.stdout).toBe("still\n");
});

test("usage: true: user/system CPU and peak memory from rusage; absent unless asked", async () => {
  const r = await fx.host.run(fx.id(), { shell: "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done", usage: true } as never);
  expect(r.exit.status).toBe("exited");
  const u = r.exit.usage as { userUsec: number; systemUsec: number; memoryPeak: number; from: string };
  expect(u.from).toBe("rusage");
  expect(u.userUsec + u.systemUsec).toBeGreaterThan(1000);
  expect(u.memoryPeak).toBeGreaterThan(100_000);
  const plain = await fx.host.run(fx.id(), { argv: ["true"] });
  expect(plain.exit).toEqual({ status: "exited", code: 0 });
});

test.each([
  [{ memoryBytes: 1000 }],
  [{ memoryBytes: -1 }],
  [{ pids: 0 }],
  [{ pids: 1.5 }],
  [{ cpu: 0 }],
  [{ cpu: "1" }],
  [{ cpu: Number.MAX_VALUE }],
  [{ swap: 1 }],
  [[]],
  [null],
])("limits %p: ERROR EPROTO, the agent serves on", async (limits) => {
  const h = await V2Host.connect(fx.sock);
  await h.hello();
  await h.sendJson(T.EXEC, 1, { argv: ["true"], limits });
  const err = await h.until((f) => f.type === T.ERROR);
  expect(json(err).code).toBe("EPROTO");
  expect(json(err).message).toMatch(/limits/);
  h.close();
  const again = await fx.host.run(fx.id(), { argv: ["true"] });
  expect(again.exit).toEqual({ status: "exited", code: 0 });
});

test.skipIf(!PYTHON)("the Python host: ENOTSUP for limits, usage when asked", async () => {
  const py = pyHost("connect", fx.sock, {
    timeout_s: 20,
    ops: [
      { op: "exec", id: 1, req: { argv: ["true"], limits: { pids: 4 } } },
      { op: "exec", id: 2, req: { argv: ["sh", "-c", "echo hi"], usage: true } },
    ],
  });
  const rep = await py.report;
  expect(rep.ok).toBe(true);
  expect(rep.ops["1"].exit).toMatchObject({ status: "error", errno: "ENOTSUP" });
  expect(rep.ops["2"].exit).toMatchObject({ status: "exited", code: 0, usage: { from: "rusage" } });
});
