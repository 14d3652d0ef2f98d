// PUTDIR and GETDIR (PROTOCOL.md §12) from a hostile host: hand-made entry streams that climb out with
// `..`, name absolute paths, or write through a symlink (one made earlier in the same stream, or one
// already in the target) are refused, and nothing is written outside the target.
import { describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { v2Fixture } from "./_fixture.ts";
import { T, V2Host, json, type Json } from "./_host.ts";
import { encodeJson } from "../../../src/protocol/index.ts";

const fx = v2Fixture("vge-v2dirs-");
const bytes = (s: string) => new TextEncoder().encode(s);

/** A fresh connection (a protocol error closes it), a fresh target and a fresh "outside" directory. */
async function setup(): Promise<{ host: V2Host; target: string; outside: string; base: string }> {
  const base = mkdtempSync(join(fx.dir.path, "case-"));
  const outside = join(base, "outside");
  mkdirSync(outside);
  const host = await V2Host.connect(fx.sock);
  await host.hello();
  return { host, target: join(base, "target"), outside, base };
}

type Step = { entry: Json } | { data: string } | { end: true };
/** A file entry and its bytes (none for an empty file: the spec sends no FILE_DATA then). */
const file = (path: string, content: string, extra: Json = {}): Step[] => [
  { entry: { type: "file", path, mode: 0o644, mtime: 1.7e12, size: bytes(content).byteLength, ...extra } },
  ...(content ? [{ data: content }] : []),
];

/** Sends the whole stream at once; writes after the agent has closed (a refused stream) are dropped. */
async function putDir(host: V2Host, id: number, target: string, steps: Step[]): Promise<void> {
  await host.sendJson(T.PUTDIR, id, { path: target });
  for (const s of steps) {
    if ("entry" in s) await host.sendJson(T.DIR_ENTRY, id, s.entry).catch(() => {});
    else if ("data" in s) await host.send(T.FILE_DATA, id, bytes(s.data)).catch(() => {});
    else await host.send(T.DIR_END, id).catch(() => {});
  }
}

const result = (host: V2Host, id: number) => host.until((f) => f.id === id && f.type === T.RESULT, 10_000, "RESULT").then(json);
const error = (host: V2Host) => host.until((f) => f.type === T.ERROR, 10_000, "ERROR").then(json);
const listAll = (dir: string): string[] => readdirSync(dir, { recursive: true }).map(String).sort();

test("a well-formed stream: dirs, files, symlinks, modes and mtimes as sent; RESULT counts them", async () => {
  const { host, target } = await setup();
  await putDir(host, 1, target, [
    { entry: { type: "dir", path: "a", mode: 0o750, mtime: 1.6e12 } },
    ...file("a/x", "hello\n", { mode: 0o4755, mtime: 1.5e12 + 123 }),
    { entry: { type: "symlink", path: "a/l", mode: 0o777, mtime: 1.4e12, target: "../../../etc/passwd" } },
    ...file("b/deep/y", ""),
    { end: true },
  ]);
  expect(await result(host, 1)).toEqual({ ok: true, files: 2, dirs: 1, symlinks: 1, bytes: 6, skipped: 0 });
  expect(readFileSync(join(target, "a/x"), "utf8")).toBe("hello\n");
  // From the host, all 12 mode bits go through: the host could run chmod itself.
  expect(lstatSync(join(target, "a/x")).mode & 0o7777).toBe(0o4755);
  expect(lstatSync(join(target, "a/x")).mtimeMs).toBe(1.5e12 + 123);
  expect(lstatSync(join(target, "a")).mode & 0o7777).toBe(0o750);
  expect(lstatSync(join(target, "a")).mtimeMs).toBe(1.6e12);
  // The symlink is made as it was sent, never followed.
  expect(readlinkSync(join(target, "a/l"))).toBe("../../../etc/passwd");
  expect(lstatSync(join(target, "a/l")).mtimeMs).toBe(1.4e12);
  expect(listAll(target)).toEqual(["a", "a/l", "a/x", "b", "b/deep", "b/deep/y"]);
  host.close();
});

test.each([
  ["a .. component", "../escape"],
  ["a .. deeper down", "a/../../escape"],
  ["an absolute path", "/tmp/vge-abs-escape"],
  ["an empty component", "a//b"],
  ["a . component", "./a"],
  ["a NUL", "a\0b"],
])("an entry with %s is a protocol error: ERROR, connection closed, nothing written", async (_what, path) => {
  const { host, target, outside, base } = await setup();
  const abs = path.startsWith("/") ? path : undefined;
  // Only the bad header: what the agent would not read after it could reset the connection before ERROR arrives.
  await putDir(host, 1, target, file(path, "pwned\n").slice(0, 1));
  expect(await error(host)).toMatchObject({ code: "EPROTO", message: expect.stringContaining("DIR_ENTRY: path") });
  expect(await host.closedWithin(5000)).toBe(true);
  expect(listAll(outside)).toEqual([]);
  // The target directory itself may or may not have been made before the refusal: it is empty either way.
  expect(readdirSync(base).filter((n) => n !== "target")).toEqual(["outside"]);
  expect(existsSync(target) ? listAll(target) : []).toEqual([]);
  if (abs) expect(() => lstatSync(abs)).toThrow();
});

test("a symlink entry to outside, then a file under it: refused (ELOOP), nothing written outside", async () => {
  const { host, target, outside } = await setup();
  await putDir(host, 1, target, [
    { entry: { type: "symlink", path: "esc", mode: 0o777, mtime: 1e12, target: outside } },
    ...file("esc/pwned", "pwned\n"),
    { end: true },
  ]);
  expect(await result(host, 1)).toMatchObject({ ok: false, errno: "ELOOP", path: "esc/pwned" });
  expect(listAll(outside)).toEqual([]);
  expect(readlinkSync(join(target, "esc"))).toBe(outside);
  // The connection is fine: the refusal is per copy.
  expect(await host.closedWithin(200)).toBe(false);
  host.close();
});

test("a dir entry where the stream made a symlink is refused; so is a deeper path through it", async () => {
  for (const steps of [
    [{ entry: { type: "symlink", path: "esc", mode: 0o777, mtime: 1e12, target: "OUT" } }, { entry: { type: "dir", path: "esc", mode: 0o755, mtime: 1e12 } }],
    [{ entry: { type: "symlink", path: "esc", mode: 0o777, mtime: 1e12, target: "OUT" } }, ...file("esc/a/b/c", "x")],
  ] as Step[][]) {
    const { host, target, outside } = await setup();
    const s = steps.map((x) => ("entry" in x && x.entry.target === "OUT" ? { entry: { ...x.entry, target: outside } } : x));
    await putDir(host, 1, target, [...s, { end: true }]);
    expect(await result(host, 1)).toMatchObject({ ok: false, errno: "ELOOP" });
    expect(listAll(outside)).toEqual([]);
    host.close();
  }
});

test("a symlink already in the target tree is never written through, but a file entry may replace it", async () => {
  const { host, target, outside } = await setup();
  mkdirSync(target);
  symlinkSync(outside, join(target, "pre"));
  writeFileSync(join(outside, "keep"), "original\n");
  await putDir(host, 1, target, [...file("pre/keep", "pwned\n"), { end: true }]);
  expect(await result(host, 1)).toMatchObject({ ok: false, errno: "ELOOP", path: "pre/keep" });
  expect(readFileSync(join(outside, "keep"), "utf8")).toBe("original\n");

  // The symlink itself is an entry of the target: replacing it by rename does not touch what it points to.
  await putDir(host, 2, target, [...file("pre", "now a file\n"), { end: true }]);
  expect(await result(host, 2)).toMatchObject({ ok: true, files: 1 });
  expect(lstatSync(join(target, "pre")).isFile()).toBe(true);
  expect(listAll(outside)).toEqual(["keep"]);
  expect(readFileSync(join(outside, "keep"), "utf8")).toBe("original\n");
  host.close();
});

test("a file cut short by DIR_END, or longer than announced, fails and leaves no temporary file", async () => {
  const { host, target } = await setup();
  await putDir(host, 1, target, [{ entry: { type: "file", path: "short", mode: 0o644, mtime: 1e12, size: 10 } }, { data: "12345" }, { end: true }]);
  expect(await result(host, 1)).toMatchObject({ ok: false, errno: "EIO", path: "short" });
  await putDir(host, 2, target, [{ entry: { type: "file", path: "long", mode: 0o644, mtime: 1e12, size: 3 } }, { data: "12345" }, { end: true }]);
  expect(await result(host, 2)).toMatchObject({ ok: false, errno: "EFBIG", path: "long" });
  expect(listAll(target)).toEqual([]);
  host.close();
});

// When the overrun is noticed depends on how fast the agent writes, so the host streams without regard to
// WINDOW (as malformed.test.ts does) until the agent objects or a bound is reached.
describe("sending beyond the window: ERROR EFLOW, connection closed", () => {
  test.each([
    ["file data", "data"],
    // Empty files only: no FILE_DATA at all, so only the headers' own cost can overrun the window.
    ["entry headers alone", "headers"],
  ])("%s", async (_what, kind) => {
    const { host, target } = await setup();
    await host.sendJson(T.PUTDIR, 1, { path: target });
    if (kind === "data") await host.sendJson(T.DIR_ENTRY, 1, { type: "file", path: "big", mode: 0o644, mtime: 1e12, size: 64 << 20 });
    const long = "n".repeat(200);
    for (let i = 0; i < 4096 && !host.frames.some((f) => f.type === T.ERROR); i++) {
      const sent = kind === "data" ? host.send(T.FILE_DATA, 1, new Uint8Array(65536)) : host.sendJson(T.DIR_ENTRY, 1, { type: "file", path: `${long}${i}`, mode: 0o644, mtime: 1e12, size: 0 });
      if (!(await sent.then(() => true, () => false))) break;
    }
    expect(await host.closedWithin(5000)).toBe(true);
    // The ERROR frame itself may be lost: the agent closes with our bytes unread, and the kernel resets
    // the connection. Its log says why it closed.
    const err = host.frames.find((f) => f.type === T.ERROR);
    if (err) expect(json(err)).toMatchObject({ code: "EFLOW" });
    const type = kind === "data" ? "FILE_DATA" : "DIR_ENTRY";
    const logged = new RegExp(`${type}: \\d+ bytes exceed the \\d+ bytes of credit; closing this connection`);
    for (let t = 0; t < 5000 && !logged.test(fx.agent.log()); t += 20) await Bun.sleep(20);
    expect(fx.agent.log()).toMatch(logged);
    // No temporary file left behind by the abort. The log line comes when the overrun is seen; the entry
    // being written then (an empty file, or the big one) is finished or removed just after it, in order.
    const temporary = () => (existsSync(target) ? listAll(target).filter((n) => n.includes(".vge-")) : []);
    for (let t = 0; t < 2000 && temporary().length > 0; t += 20) await Bun.sleep(20);
    expect(temporary()).toEqual([]);
  }, 30_000);
});

test("GETDIR sends symlinks as entries (never followed), skips FIFOs (named in the agent's log), then DIR_END and RESULT", async () => {
  const { host, base, outside } = await setup();
  const src = join(base, "src");
  mkdirSync(join(src, "sub"), { recursive: true });
  writeFileSync(join(src, "sub", "f"), "data\n");
  writeFileSync(join(outside, "secret"), "not for the host\n");
  symlinkSync(outside, join(src, "out"));
  execFileSync("mkfifo", [join(src, "fifo")]);
  await host.sendJson(T.GETDIR, 7, { path: src });
  const res = await result(host, 7);
  expect(res).toEqual({ ok: true, files: 1, dirs: 1, symlinks: 1, bytes: 5, skipped: 1 });
  const frames = host.of(7);
  const entries = frames.filter((f) => f.type === T.DIR_ENTRY).map((f) => json(f));
  expect(entries.map((e) => [e.type, e.path])).toEqual([["symlink", "out"], ["dir", "sub"], ["file", "sub/f"]]);
  expect(entries[0]!.target).toBe(outside);
  expect(frames.map((f) => f.type).slice(-2)).toEqual([T.DIR_END, T.RESULT]);
  for (let t = 0; t < 5000 && !fx.agent.log().includes(`GETDIR ${src}: skipped`); t += 20) await Bun.sleep(20);
  expect(fx.agent.log()).toContain(`GETDIR ${src}: skipped fifo: a special file`);
  host.close();
});

test("GETDIR of a tree of 30 FIFOs: the agent's log names the first 10 and counts the rest in one line", async () => {
  const { host, base } = await setup();
  const src = join(base, "fifos");
  mkdirSync(src);
  for (let i = 0; i < 30; i++) execFileSync("mkfifo", [join(src, `p${String(i).padStart(2, "0")}`)]);
  await host.sendJson(T.GETDIR, 8, { path: src });
  expect(await result(host, 8)).toEqual({ ok: true, files: 0, dirs: 0, symlinks: 0, bytes: 0, skipped: 30 });
  const lines = () => fx.agent.log().split("\n").filter((l) => l.includes(`GETDIR ${src}:`));
  for (let t = 0; t < 5000 && !lines().some((l) => l.includes("more entries")); t += 20) await Bun.sleep(20);
  expect(lines()).toHaveLength(11);
  expect(lines()[9]).toContain("skipped p09: a special file");
  expect(lines()[10]).toContain("20 more entries skipped");
  host.close();
});

test("GETDIR of a missing directory: RESULT ENOENT, no DIR_END", async () => {
  const { host, base } = await setup();
  await host.sendJson(T.GETDIR, 8, { path: join(base, "nosuch") });
  expect(await result(host, 8)).toMatchObject({ ok: false, errno: "ENOENT" });
  expect(host.of(8).map((f) => f.type)).toEqual([T.RESULT]);
  host.close();
});


test("a tree 40 directories deep: every level's mode and mtime set (the deep ones reached again through ..), no fd left open", async () => {
  const { host, target } = await setup();
  const fds = () => readdirSync(`/proc/${fx.agent.pid}/fd`).length;
  // Earlier tests' connections close asynchronously: the count is taken once it holds still for 300 ms.
  let before = fds();
  for (let still = 0; still < 300; still += 50) {
    await Bun.sleep(50);
    if (fds() !== before) [before, still] = [fds(), 0];
  }
  const levels = Array.from({ length: 40 }, (_, i) => `l${i}`);
  const steps: Step[] = [];
  for (let i = 0; i < levels.length; i++) {
    const path = levels.slice(0, i + 1).join("/");
    steps.push({ entry: { type: "dir", path, mode: i % 2 ? 0o750 : 0o705, mtime: 1.6e12 + i * 1000 } });
    steps.push(...file(`${path}/f`, `${i}\n`));
  }
  // Back up to the top and into a sibling: every level is left at once, deepest first.
  steps.push({ entry: { type: "dir", path: "z", mode: 0o700, mtime: 1.5e12 } }, { end: true });
  await putDir(host, 1, target, steps);
  expect(await result(host, 1)).toEqual({ ok: true, files: 40, dirs: 41, symlinks: 0, bytes: 110, skipped: 0 });
  for (let i = 0; i < levels.length; i++) {
    const st = lstatSync(join(target, ...levels.slice(0, i + 1)));
    expect([i, st.mode & 0o7777, st.mtimeMs]).toEqual([i, i % 2 ? 0o750 : 0o705, 1.6e12 + i * 1000]);
  }
  expect(lstatSync(join(target, "z")).mode & 0o7777).toBe(0o700);
  expect(fds()).toBe(before);
  host.close();
});

test("a deep directory moved elsewhere while the copy is inside it: ESTALE when leaving, no mode set on a directory it did not open", async () => {
  const { host, target } = await setup();
  const levels = Array.from({ length: 40 }, (_, i) => `l${i}`);
  await host.sendJson(T.PUTDIR, 1, { path: target });
  for (let i = 0; i < levels.length; i++) {
    const frame = encodeJson(T.DIR_ENTRY, 1, { type: "dir", path: levels.slice(0, i + 1).join("/"), mode: 0o750, mtime: 1.6e12 });
    host.spend(1, frame.byteLength - 9);
    await host.write(frame);
  }
  // All written (all credit back): the agent is 40 levels down, holding the top 32 levels' fds and the last's.
  await host.waitFor(() => host.inputCredit(1) === (host.welcome?.window ?? 262144), 10_000, "credit back");
  const l34 = join(target, ...levels.slice(0, 35));
  renameSync(join(l34, "l35"), join(target, "moved"));
  mkdirSync(join(l34, "l35"), 0o755);
  await host.send(T.DIR_END, 1);
  expect(await result(host, 1)).toMatchObject({ ok: false, errno: "ESTALE", path: levels.slice(0, 35).join("/") });
  // The moved tree got its modes (its fds were the agent's own); the root it now sits in was never touched.
  expect(lstatSync(join(target, "moved", ...levels.slice(36))).mode & 0o7777).toBe(0o750);
  expect(lstatSync(target).mode & 0o7777).toBe(0o755);
  expect(lstatSync(join(l34, "l35")).mode & 0o7777).toBe(0o755);
  host.close();
});
