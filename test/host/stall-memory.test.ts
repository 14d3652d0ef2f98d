// Credit still holds the host to a window whatever its transport: a consumer that does not read an
// execution's stdout (`yes`, endless) or a GET's data (a 512 MiB file) for 3 s makes the host, in its own
// process, hold no more than about one window (256 KiB), whatever the agent could send. Measured with the
// compiled agent over a Unix socket (on Bun: Bun's sockets, transport/conn.ts).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { closeSync, ftruncateSync, openSync } from "node:fs";
import { join } from "node:path";
import type { RunningAgent } from "../helpers/agent.ts";
import { listeningAgent, stop, tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-stall-");
let agent: RunningAgent;
beforeAll(async () => {
  agent = await listeningAgent(dir.file("agent.sock"), 120_000);
});
afterAll(() => {
  stop(agent);
  dir.remove();
});

async function stalledHost(what: string): Promise<{ grew: number; firstChunk: number }> {
  const host = Bun.spawn(["bun", join(import.meta.dir, "_stall-host.ts"), `unix:${dir.file("agent.sock")}`, what, "3000"], { stdout: "pipe", stderr: "inherit", timeout: 60_000, killSignal: "SIGKILL" });
  const out = await new Response(host.stdout).text();
  await host.exited;
  return JSON.parse(out);
}

test("stdout of `yes` unread for 3 s: the host grows by under 16 MiB, and the stream is live after", async () => {
  const { grew, firstChunk } = await stalledHost("stdout");
  console.log(`stalled stdout: host RSS +${(grew / 2 ** 20).toFixed(1)} MiB at peak`);
  expect(firstChunk).toBeGreaterThan(0);
  expect(grew).toBeLessThan(16 * 1024 * 1024);
}, 60_000);

test("a 512 MiB GET unread for 3 s: the host grows by under 16 MiB", async () => {
  const big = dir.file("big.bin");
  const fd = openSync(big, "w");
  ftruncateSync(fd, 512 * 1024 * 1024); // sparse: reads as zeros, costs no disk
  closeSync(fd);
  const { grew, firstChunk } = await stalledHost(big);
  console.log(`stalled GET: host RSS +${(grew / 2 ** 20).toFixed(1)} MiB at peak`);
  expect(firstChunk).toBeGreaterThan(0);
  expect(grew).toBeLessThan(16 * 1024 * 1024);
}, 60_000);
