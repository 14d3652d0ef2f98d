// putFile / getFile against the real agent (listening; the host connects): bytes, hashes and modes.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { connect, FileError, type Guest } from "../../src/host/index.ts";
import type { RunningAgent } from "../helpers/agent.ts";
import { listeningAgent, sha256, stop, tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-files-");
let agent: RunningAgent;
let guest: Guest;

beforeAll(async () => {
  agent = await listeningAgent(dir.file("agent.sock"), 120_000);
  guest = await connect(`unix:${dir.file("agent.sock")}`);
});

afterAll(() => {
  guest?.close();
  stop(agent);
  dir.remove();
});

test("put then get: same bytes (sha256), the mode applied and reported", async () => {
  const data = crypto.getRandomValues(new Uint8Array(3 * 1024 * 1024 + 17));
  const path = dir.file("put.bin");
  const info = await guest.putFile(path, data, { mode: 0o640 });
  expect(info.size).toBe(data.byteLength);
  expect(statSync(path).mode & 0o7777).toBe(0o640);
  expect(sha256(new Uint8Array(await Bun.file(path).arrayBuffer()))).toBe(sha256(data));
  const remote = guest.getFile(path);
  const back = await new Response(remote.stream).bytes();
  expect(await remote.done).toEqual({ size: data.byteLength, mode: 0o640 });
  expect(sha256(back)).toBe(sha256(data));
});

test("put from a local file keeps its mode; from a stream with or without a size", async () => {
  const local = dir.file("tool.sh");
  writeFileSync(local, "#!/bin/sh\necho tool\n");
  chmodSync(local, 0o751);
  await guest.putFile(dir.file("tool-copy.sh"), { localPath: local });
  expect(statSync(dir.file("tool-copy.sh")).mode & 0o7777).toBe(0o751);
  expect((await guest.run([dir.file("tool-copy.sh")])).stdoutText).toBe("tool\n");

  const chunks = ["a".repeat(100_000), "b".repeat(200_000)];
  const stream = () => new Blob(chunks).stream();
  await guest.putFile(dir.file("s1"), stream(), { size: 300_000 });
  await guest.putFile(dir.file("s2"), stream());
  for (const f of ["s1", "s2"]) expect(await Bun.file(dir.file(f)).text()).toBe(chunks.join(""));
  expect(statSync(dir.file("s2")).mode & 0o7777).toBe(0o644);
});

test("an empty file, and readFile()", async () => {
  await guest.putFile(dir.file("empty"), new Uint8Array(0));
  expect((await guest.readFile(dir.file("empty"))).byteLength).toBe(0);
  await guest.putFile(dir.file("text"), "héllo\n");
  expect(new TextDecoder().decode(await guest.readFile(dir.file("text")))).toBe("héllo\n");
});

test("errors: a missing file, a missing directory, maxSize", async () => {
  const missing = await guest.readFile(dir.file("nope")).catch((e) => e);
  expect(missing).toBeInstanceOf(FileError);
  expect(missing.errno).toBe("ENOENT");
  const put = await guest.putFile(dir.file("no/such/dir/f"), "x").catch((e) => e);
  expect(put).toBeInstanceOf(FileError);
  expect(put.errno).toBe("ENOENT");
  await guest.putFile(dir.file("big"), new Uint8Array(5000));
  const big = await guest.readFile(dir.file("big"), { maxSize: 4096 }).catch((e) => e);
  expect(big).toBeInstanceOf(FileError);
  expect(big.errno).toBe("EFBIG");
  // The connection is still fine after refused requests.
  expect((await guest.run(["true"])).code).toBe(0);
});

test("a download read slowly stays intact and other work goes on meanwhile", async () => {
  const data = crypto.getRandomValues(new Uint8Array(2 * 1024 * 1024));
  await guest.putFile(dir.file("slow.bin"), data);
  const remote = guest.getFile(dir.file("slow.bin"));
  const reader = remote.stream.getReader();
  const parts: Uint8Array[] = [];
  const first = await reader.read();
  parts.push(first.value!);
  expect(await guest.ping()).toBeLessThan(1000);
  for (;;) {
    await Bun.sleep(2);
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
});

test("transfers at once on one connection", async () => {
  const files = Array.from({ length: 8 }, (_, i) => crypto.getRandomValues(new Uint8Array(100_000 + i)));
  await Promise.all(files.map((f, i) => guest.putFile(dir.file(`c${i}`), f)));
  const back = await Promise.all(files.map((_, i) => guest.readFile(dir.file(`c${i}`))));
  back.forEach((b, i) => expect(sha256(b)).toBe(sha256(files[i]!)));
});

test("putFile from a local file on a closed connection fails without leaving the file open", async () => {
  const big = dir.file("leak-src.bin");
  writeFileSync(big, new Uint8Array(1 << 20));
  const g = await connect(`unix:${dir.file("agent.sock")}`);
  g.close();
  const fds = () => readdirSync("/proc/self/fd").length;
  const before = fds();
  for (let i = 0; i < 20; i++) {
    const err = await g.putFile("/tmp/never", { localPath: big }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
  }
  await Bun.sleep(100);
  // Before: one fd per call (the read stream was opened before the request failed), 20 here.
  expect(fds() - before).toBeLessThanOrEqual(2);
});

test("putFile from a source that stalls settles when the connection ends; the agent removes its temporary file", async () => {
  // 64 KiB, then nothing: the window never runs out, so only the source is being waited for.
  const stalled = () => new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new Uint8Array(65536));
    },
  });
  const g = await connect(`unix:${dir.file("agent.sock")}`);
  const put = g.putFile(dir.file("stalled.bin"), stalled(), { size: 1 << 20 }).catch((e: Error) => e);
  await Bun.sleep(300);
  expect(readdirSync(dir.path).filter((n) => n.startsWith(".stalled.bin.vge-")).length).toBe(1);
  const t0 = performance.now();
  g.close();
  const bound = new Promise((r) => setTimeout(() => r("still pending"), 3000));
  const err = await Promise.race([put, bound]);
  expect(err).toBeInstanceOf(Error);
  expect(performance.now() - t0).toBeLessThan(2000);
  await Bun.sleep(200);
  expect(readdirSync(dir.path).filter((n) => n.includes("stalled"))).toEqual([]);
});

test("putFile from a source that fails half-way fails at once with EIO; no file, no temporary file", async () => {
  let pulls = 0;
  const failing = new ReadableStream<Uint8Array>({
    pull(c) {
      if (pulls++ === 0) c.enqueue(new Uint8Array(65536));
      else c.error(new Error("disk gone"));
    },
  });
  const t0 = performance.now();
  const put = guest.putFile(dir.file("half.bin"), failing, { size: 1 << 20 }).catch((e: Error) => e);
  const err = await Promise.race([put, new Promise((r) => setTimeout(() => r("still pending"), 3000))]);
  expect(err).toBeInstanceOf(FileError);
  expect((err as FileError).errno).toBe("EIO");
  expect(performance.now() - t0).toBeLessThan(2000);
  await Bun.sleep(100);
  expect(readdirSync(dir.path).filter((n) => n.includes("half"))).toEqual([]);
  // The connection goes on.
  expect((await guest.run(["echo", "on"])).stdoutText).toBe("on\n");
});
