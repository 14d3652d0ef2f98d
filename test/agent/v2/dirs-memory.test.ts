// A hostile host sends PUTDIR and then DIR_ENTRY{dir} over and over (20,000 times one ~3.8 KiB path, or
// 20,000 distinct ones), within the window, so that only the agent's own bookkeeping could grow. The
// agent's RSS, from /proc/PID/status, must stay bounded (before: a fix-up entry kept per DIR_ENTRY until
// DIR_END, tens of MiB).
import { expect, test } from "bun:test";
import { lowestRss } from "../../helpers/proc.ts";
import { v2Fixture } from "./_fixture.ts";
import { T, V2Host, json } from "./_host.ts";
import { encodeJson } from "../../../src/protocol/index.ts";

const fx = v2Fixture("vge-v2dirmem-");
const N = 20_000;
const DEEP = Array.from({ length: 19 }, (_, i) => String.fromCharCode(97 + i).repeat(200)).join("/");

/** Sends `n` entries within the agent's window, then waits until it has written them all (all credit back). */
async function entries(host: V2Host, id: number, n: number, path: (i: number) => string): Promise<void> {
  const window = host.welcome?.window ?? 262144;
  for (let i = 0; i < n; i++) {
    const frame = encodeJson(T.DIR_ENTRY, id, { type: "dir", path: path(i), mode: 0o755, mtime: 1.7e12 });
    const cost = frame.byteLength - 9;
    if (host.inputCredit(id) < cost) await host.waitFor(() => host.inputCredit(id) >= cost, 60_000, "credit");
    host.spend(id, cost);
    await host.write(frame);
  }
  await host.waitFor(() => host.inputCredit(id) === window, 60_000, "all credit back");
}

test.each([
  ["one directory repeated", (_i: number) => `${DEEP}/x`],
  ["distinct directories", (i: number) => `${DEEP}/d${i}`],
])(`PUTDIR, ${N} DIR_ENTRY{dir} of ~3.8 KiB paths (%s): the agent's RSS stays bounded`, async (what, path) => {
  const host = await V2Host.connect(fx.sock);
  await host.hello();
  const target = fx.dir.file(`target-${what.split(" ")[0]}`);
  try {
    await host.sendJson(T.PUTDIR, 1, { path: target });
    await entries(host, 1, 1000, path);
    const before = await lowestRss(fx.agent.pid, 1000);
    await entries(host, 1, N, (i) => path(i + 1000));
    const after = await lowestRss(fx.agent.pid, 1000);
    await host.send(T.DIR_END, 1);
    const res = json(await host.until((f) => f.id === 1 && f.type === T.RESULT, 60_000, "RESULT"));
    expect(res).toEqual({ ok: true, files: 0, dirs: N + 1000, symlinks: 0, bytes: 0, skipped: 0 });
    const grew = (after - before) / 1024;
    console.log(`${what}: agent RSS ${(before / 1024).toFixed(1)} MiB after 1,000 entries, ${(after / 1024).toFixed(1)} MiB after ${N} more (${grew >= 0 ? "+" : ""}${grew.toFixed(1)} MiB)`);
    expect(grew).toBeLessThan(16);
  } finally {
    host.close();
    // rm(1) works by directory fds; rmSync resolves each 3.8 KiB path anew and is far slower on this tree.
    Bun.spawnSync(["rm", "-rf", target]);
  }
}, 240_000);
