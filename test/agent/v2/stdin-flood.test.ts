// STDIN to a process that does not read it is held as bytes within the host's credit (src/agent/v2/
// stdin-queue.ts), measured on the compiled agent: a window sent as 1-byte frames, and frames that take no
// credit at all (empty STDIN, STDIN_EOF again and again), cost the agent one window, not memory per frame.
import { afterEach, expect, test } from "bun:test";
import { T, encodeFrame } from "../../../src/protocol/v2/frame.ts";
import { tempDir, type TempDir } from "../../helpers/tmp.ts";
import { vmRssKiB } from "../../helpers/proc.ts";
import { listeningAgent, type Agent } from "./_agent.ts";
import { V2Host } from "./_host.ts";

let dir: TempDir | undefined;
let agent: Agent | undefined;
let h: V2Host | undefined;

afterEach(async () => {
  h?.close();
  await agent?.stop();
  dir?.remove();
});

/** `count` copies of `frame`, written in batches. */
async function flood(host: V2Host, frame: Uint8Array, count: number): Promise<void> {
  for (let sent = 0; sent < count; sent += 10_000) await host.write(Buffer.concat(Array.from({ length: Math.min(10_000, count - sent) }, () => frame)));
}

test("a window of 1-byte STDIN frames, 200,000 empty ones and 200,000 STDIN_EOF to a process not reading: agent VmRSS + < 32 MiB beyond decoding them (was +217)", async () => {
  dir = tempDir("vge-stdin-flood-");
  const path = dir.file("agent.sock");
  agent = await listeningAgent(path, 120_000);
  h = await V2Host.connect(path);
  await h.hello();
  expect((await h.run(1, { argv: ["echo", "warm"] })).stdout).toBe("warm\n");
  await h.sendJson(T.EXEC, 2, { argv: ["sleep", "60"] });
  await h.until((f) => f.id === 2 && f.type === T.STARTED);
  // The pipe's 64 KiB first, so that what follows waits in the agent.
  await h.stdin(2, new Uint8Array(64 * 1024));
  /** The same frames to `id`, then VmRSS (KiB) once the agent has read them all (its PONG is back). */
  const floodAll = async (id: number, credit: number): Promise<number> => {
    await flood(h!, encodeFrame(T.STDIN, id, new Uint8Array([0x78])), credit);
    await flood(h!, encodeFrame(T.STDIN, id), 200_000);
    await flood(h!, encodeFrame(T.STDIN_EOF, id), 200_000);
    await h!.sendJson(T.PING, 7, {});
    await h!.until((f) => f.type === T.PONG && f.id === 7, 30_000, "PONG");
    h!.frames.splice(0);
    await Bun.sleep(500);
    return vmRssKiB(agent!.pid)!;
  };
  await Bun.sleep(300);
  const baseline = vmRssKiB(agent.pid)!;
  const credit = h.inputCredit(2);
  // First to an id that is no execution (the agent ignores them): what decoding that many frames costs.
  const decoded = await floodAll(99, credit);
  h.spend(2, credit);
  const queued = await floodAll(2, credit);
  const decodeMiB = (decoded - baseline) / 1024;
  const growthMiB = (queued - decoded) / 1024;
  console.log(`${credit} 1-byte STDIN frames, 200,000 empty, 200,000 STDIN_EOF: agent VmRSS ${Math.round(baseline / 1024)} MiB, +${decodeMiB.toFixed(1)} MiB to an id that is no execution, then +${growthMiB.toFixed(1)} MiB more to a process not reading`);
  // Held: one window of bytes. The rest is the collector's slack, as much as a second flood to an id that
  // is no execution adds (+15 MiB measured). Before: one promise per frame, +217 MiB.
  expect(growthMiB).toBeLessThan(32);
  await h.sendJson(T.SIGNAL, 2, { signal: "SIGKILL" });
  expect((await h.exit(2, 20_000)).exit).toMatchObject({ status: "signaled", signal: "SIGKILL" });
}, 90_000);
