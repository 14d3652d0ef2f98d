// Driving the real agent in the original formats: nothing comes back, so the files the commands write
// and the moment the connection closes are what the tests look at.
import { afterAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { listenRaw, sendDisposable, sendPersistent } from "../../src/host/index.ts";
import { startAgent } from "../helpers/agent.ts";
import { stop, tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-legacy-");
afterAll(() => dir.remove());

test("sendPersistent: every command runs in order; resolves once the agent has run them all", async () => {
  const path = dir.file("p.sock");
  const l = await listenRaw({ kind: "unix-listen", path });
  const agent = startAgent(["--unix", path, "--retry", "10", "persistent"]);
  try {
    const { conn } = await l.accept();
    const out = dir.file("p.out");
    await sendPersistent(conn, [`echo one >> ${out}`, `sleep 0.3; echo two >> ${out}`, `echo three >> ${out}`]);
    expect(readFileSync(out, "utf8")).toBe("one\ntwo\nthree\n");
    expect((await agent.done).code).toBe(0);
  } finally {
    stop(agent);
    await l.close();
  }
}, 15_000);

test("sendDisposable: resolves when the command has finished (the agent closes then)", async () => {
  const path = dir.file("d.sock");
  const l = await listenRaw({ kind: "unix-listen", path });
  const agent = startAgent(["--unix", path, "--retry", "10"]);
  try {
    const { conn } = await l.accept();
    const out = dir.file("d.out");
    const t0 = performance.now();
    await sendDisposable(conn, `sleep 0.5; echo done > ${out}`);
    expect(performance.now() - t0).toBeGreaterThan(450);
    expect(readFileSync(out, "utf8")).toBe("done\n");
    expect((await agent.done).code).toBe(0);
  } finally {
    stop(agent);
    await l.close();
  }
}, 15_000);

test("sizes are checked before anything is sent", async () => {
  const path = dir.file("s.sock");
  const l = await listenRaw({ kind: "unix-listen", path });
  const agent = startAgent(["--unix", path, "--retry", "10", "persistent"]);
  try {
    const { conn } = await l.accept();
    const marker = dir.file("s.out");
    const long = "x".repeat(2049);
    await expect(sendPersistent(conn, [`touch ${marker}`, long])).rejects.toThrow("command 2 is 2049 bytes; the original format allows at most 2048");
    await expect(sendDisposable(conn, "")).rejects.toThrow("the command is empty");
    await expect(sendDisposable(conn, "a\0b")).rejects.toThrow(/NUL/);
    await sendPersistent(conn, ["x".repeat(2048 - 20).replace(/^x{5}/, "true;")]);
    expect(existsSync(marker)).toBe(false);
  } finally {
    stop(agent);
    await l.close();
  }
}, 15_000);
