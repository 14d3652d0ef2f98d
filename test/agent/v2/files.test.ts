// PUT and GET (PROTOCOL.md §8): binary round trips, mode and owner, the rename that makes a PUT atomic,
// refusals that leave no temporary file behind.
import { describe, expect, test } from "bun:test";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { v2Fixture } from "./_fixture.ts";
import { T, V2Host, json, type Json } from "./_host.ts";
import { pyHost } from "./_pyhost.ts";

const fx = v2Fixture("vge-v2files-");

const sha = (b: Uint8Array) => new Bun.CryptoHasher("sha256").update(b).digest("hex");
const temps = () => readdirSync(fx.dir.path).filter((n) => n.includes(".vge-"));

interface PutOptions {
  /** Announced size (default: the data's). */
  size?: number;
  chunk?: number;
  delayMs?: number;
  /** Called after each chunk has been written by the agent (its credit came back). */
  between?: () => void;
}

/** PUT within the agent's credit, then FILE_END; the RESULT body. */
async function put(id: number, req: Json, data: Uint8Array, o: PutOptions = {}): Promise<Json> {
  await fx.host.sendJson(T.PUT, id, { ...req, size: o.size ?? data.byteLength });
  for (let off = 0; off < data.byteLength; ) {
    await fx.host.waitFor(() => fx.host.inputCredit(id) > 0, 10_000, `PUT credit for ${id}`);
    const n = Math.min(fx.host.inputCredit(id), o.chunk ?? 65536, data.byteLength - off);
    fx.host.spend(id, n);
    await fx.host.send(T.FILE_DATA, id, data.subarray(off, off + n));
    off += n;
    if (o.between) {
      await fx.host.waitFor(() => fx.host.inputCredit(id) === 262144, 10_000, "the agent to write the chunk");
      o.between();
    }
    if (o.delayMs) await Bun.sleep(o.delayMs);
  }
  await fx.host.send(T.FILE_END, id);
  return json(await fx.host.until((f) => f.id === id && f.type === T.RESULT, 10_000));
}

async function get(id: number, req: Json): Promise<{ result: Json; data: Buffer; frames: number[] }> {
  await fx.host.sendJson(T.GET, id, req);
  const result = json(await fx.host.until((f) => f.id === id && f.type === T.RESULT, 10_000));
  const frames = fx.host.of(id);
  return { result, data: Buffer.concat(frames.filter((f) => f.type === T.FILE_DATA).map((f) => f.payload)), frames: frames.map((f) => f.type) };
}

describe("PUT and GET", () => {
  test("random binary data round trips (sha256), with the mode applied exactly", async () => {
    const data = new Uint8Array(randomBytes(3 * 1024 * 1024 + 17));
    const path = fx.dir.file("blob.bin");
    expect(await put(fx.id(), { path, mode: 0o640 }, data)).toEqual({ ok: true, size: data.byteLength });
    expect(sha(readFileSync(path))).toBe(sha(data));
    expect(statSync(path).mode & 0o7777).toBe(0o640);
    const g = await get(fx.id(), { path });
    expect(g.result).toEqual({ ok: true, size: data.byteLength, mode: 0o640 });
    expect(sha(g.data)).toBe(sha(data));
    expect(g.frames.at(-1)).toBe(T.RESULT);
    expect(temps()).toEqual([]);
  });

  test("mode defaults to 0644, and modes outside the umask are applied (0777, setgid)", async () => {
    const a = fx.dir.file("default-mode");
    expect((await put(fx.id(), { path: a }, new Uint8Array([1]))).ok).toBe(true);
    expect(statSync(a).mode & 0o7777).toBe(0o644);
    const b = fx.dir.file("wide-mode");
    expect((await put(fx.id(), { path: b, mode: 0o2777 }, new Uint8Array([1]))).ok).toBe(true);
    expect(statSync(b).mode & 0o7777).toBe(0o2777);
  });

  test("an empty file", async () => {
    const path = fx.dir.file("empty");
    expect(await put(fx.id(), { path }, new Uint8Array(0))).toEqual({ ok: true, size: 0 });
    expect(statSync(path).size).toBe(0);
    const g = await get(fx.id(), { path });
    expect(g.result).toMatchObject({ ok: true, size: 0 });
    expect(g.frames).toEqual([T.RESULT]);
  });

  test.skipIf(process.getuid?.() !== 0)("uid and gid are applied", async () => {
    const path = fx.dir.file("owned");
    expect((await put(fx.id(), { path, uid: 65534, gid: 4321 }, new Uint8Array([7]))).ok).toBe(true);
    expect(statSync(path).uid).toBe(65534);
    expect(statSync(path).gid).toBe(4321);
  });

  test("atomic: a reader polling during a slow PUT sees only the old file or the whole new one", async () => {
    const path = fx.dir.file("config");
    const old = Buffer.alloc(400_000, "A");
    const next = Buffer.alloc(600_000, "B");
    writeFileSync(path, old);
    const seen = new Map<string, number>();
    const look = () => {
      const s = sha(readFileSync(path));
      seen.set(s, (seen.get(s) ?? 0) + 1);
    };
    let sawTemp = false;
    const poller = setInterval(look, 2);
    try {
      const result = await put(fx.id(), { path }, next, {
        chunk: 32768,
        delayMs: 15,
        between: () => {
          // The chunk is on disk by now, in the temporary file next to the destination, not in it.
          look();
          sawTemp ||= temps().length === 1;
        },
      });
      expect(result).toEqual({ ok: true, size: next.byteLength });
    } finally {
      clearInterval(poller);
    }
    look();
    expect(sawTemp).toBe(true);
    expect([...seen.keys()].every((k) => k === sha(old) || k === sha(next))).toBe(true);
    expect(seen.get(sha(old))).toBeGreaterThan(10);
    expect(seen.get(sha(next))).toBeGreaterThanOrEqual(1);
    expect(readFileSync(path).equals(next)).toBe(true);
    expect(temps()).toEqual([]);
  }, 20_000);

  test("fewer bytes than announced: an error, the temporary file removed, the destination untouched", async () => {
    const path = fx.dir.file("short");
    writeFileSync(path, "original");
    const r = await put(fx.id(), { path }, new Uint8Array(50), { size: 100 });
    expect(r.ok).toBe(false);
    expect(typeof r.errno).toBe("string");
    expect(readFileSync(path, "utf8")).toBe("original");
    expect(temps()).toEqual([]);
  });

  test("more bytes than announced: EFBIG, the temporary file removed, the destination untouched", async () => {
    const path = fx.dir.file("long");
    writeFileSync(path, "original");
    const r = await put(fx.id(), { path }, new Uint8Array(200_000), { size: 100 });
    expect(r).toMatchObject({ ok: false, errno: "EFBIG" });
    expect(readFileSync(path, "utf8")).toBe("original");
    expect(temps()).toEqual([]);
  });

  test("a connection closed in the middle of a PUT leaves no temporary file and the destination untouched", async () => {
    const path = fx.dir.file("interrupted");
    writeFileSync(path, "original");
    const h = await V2Host.connect(fx.sock);
    await h.hello();
    await h.sendJson(T.PUT, 1, { path, size: 1_000_000 });
    h.spend(1, 100_000);
    await h.send(T.FILE_DATA, 1, new Uint8Array(100_000));
    await h.waitFor(() => h.inputCredit(1) === 262144, 5000, "the chunk to be written");
    expect(temps()).toHaveLength(1);
    h.close();
    for (let t = 0; temps().length > 0 && t < 100; t++) await Bun.sleep(20);
    expect(temps()).toEqual([]);
    expect(readFileSync(path, "utf8")).toBe("original");
  });

  test("PUT into a missing directory: ENOENT", async () => {
    const r = await put(fx.id(), { path: fx.dir.file("no/such/dir/file") }, new Uint8Array(10));
    expect(r).toMatchObject({ ok: false, errno: "ENOENT" });
  });

  test("GET over maxSize: EFBIG before any data", async () => {
    const path = fx.dir.file("ten-k");
    writeFileSync(path, Buffer.alloc(10_000, 1));
    const g = await get(fx.id(), { path, maxSize: 9_999 });
    expect(g.result).toMatchObject({ ok: false, errno: "EFBIG" });
    expect(g.frames).toEqual([T.RESULT]);
    expect((await get(fx.id(), { path, maxSize: 10_000 })).result).toMatchObject({ ok: true, size: 10_000 });
  });

  test("GET of a missing file: ENOENT; of a directory: an error, no data", async () => {
    const missing = await get(fx.id(), { path: fx.dir.file("nothing-here") });
    expect(missing.result).toMatchObject({ ok: false, errno: "ENOENT" });
    expect(missing.frames).toEqual([T.RESULT]);
    const d = await get(fx.id(), { path: fx.dir.path });
    expect(d.result).toMatchObject({ ok: false, errno: "EISDIR" });
    expect(d.frames).toEqual([T.RESULT]);
  });

  test("relative paths are refused as protocol errors (on a connection of their own)", async () => {
    const h = await V2Host.connect(fx.sock);
    await h.hello();
    await h.sendJson(T.GET, 1, { path: "etc/passwd" });
    expect(json(await h.until((f) => f.type === T.ERROR)).code).toBe("EPROTO");
    expect(await h.closedWithin(2000)).toBe(true);
  });
});

test("Python host: PUT of seeded random data, GET back, hashes and mode agree", async () => {
  const path = fx.dir.file("py.bin");
  const py = pyHost("connect", fx.sock, {
    timeout_s: 20,
    ops: [
      { op: "put", id: 1, req: { path, mode: 0o600 }, gen: { size: 2_500_000, seed: 42 } },
      { op: "get", id: 2, after: [1], req: { path } },
    ],
  });
  const rep = await py.report;
  expect(rep.ok).toBe(true);
  expect(rep.ops["1"].result).toEqual({ ok: true, size: 2_500_000 });
  expect(rep.ops["2"].result).toEqual({ ok: true, size: 2_500_000, mode: 0o600 });
  expect(rep.ops["2"].data.sha256).toBe(rep.ops["1"].data.sha256);
  expect(sha(readFileSync(path))).toBe(rep.ops["1"].data.sha256);
}, 30_000);
