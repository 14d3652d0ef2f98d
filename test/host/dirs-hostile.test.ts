// getDir from a hostile guest: a fake agent on a Unix socket answers GETDIR with hand-made frames. The
// host library must refuse entries that would land outside the target (`..`, absolute paths, a symlink
// made earlier in the stream or already in the target), drop setuid/setgid/sticky bits, and hold no
// more than its window. And putDir's own failure path, against a fake agent that holds its credit.
import { afterAll, expect, test } from "bun:test";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { T, decodeWindow, encodeFrame, encodeJson, encodeWindow, typeName, type Frame } from "../../src/protocol/index.ts";
import { connect, FileError, GuestError } from "../../src/host/index.ts";
import { tempDir } from "./_fixtures.ts";
import { hostileAgents } from "./_hostile.ts";

const dir = tempDir("vge-dirhostile-");
afterAll(() => dir.remove());
const WELCOME = { version: 2, agent: "fake", capabilities: ["exec", "files", "dirs"], hostname: "fake", kernel: "0", arch: "x64", initrd: false, pid: 1, maxPayload: 262144, window: 262144 };
const bytes = (s: string) => new TextEncoder().encode(s);

type Step = { entry: Record<string, unknown> } | { data: string | Uint8Array } | { end: true } | { result: Record<string, unknown> };

const agent = hostileAgents(dir);

/** A fake agent (./_hostile.ts) that answers GETDIR with `steps`, as fast as it can, regardless of credit. Records WINDOW frames. */
async function fakeAgent(steps: Step[], windows: number[] = []): Promise<string> {
  const answer = (f: Frame, sock: Socket) => {
    if (f.type === T.WINDOW) windows.push(decodeWindow(f));
    else if (f.type === T.GETDIR) {
      for (const s of steps) {
        if ("entry" in s) sock.write(encodeJson(T.DIR_ENTRY, f.id, s.entry));
        else if ("data" in s) sock.write(encodeFrame(T.FILE_DATA, f.id, typeof s.data === "string" ? bytes(s.data) : s.data));
        else if ("end" in s) sock.write(encodeFrame(T.DIR_END, f.id));
        else sock.write(encodeJson(T.RESULT, f.id, s.result));
      }
    }
  };
  return (await agent({ welcome: WELCOME, onFrame: answer })).addr;
}

const file = (path: string, content: string, extra: Record<string, unknown> = {}): Step[] => [
  { entry: { type: "file", path, mode: 0o644, mtime: 1.7e12, size: bytes(content).byteLength, ...extra } },
  ...(content ? [{ data: content }] : []),
];
const ok = (files: number, dirs: number, symlinks: number, b: number): Step => ({ result: { ok: true, files, dirs, symlinks, bytes: b, skipped: 0 } });
const listAll = (d: string): string[] => (existsSync(d) ? readdirSync(d, { recursive: true }).map(String).sort() : []);

function setup(): { target: string; outside: string; base: string } {
  const base = mkdtempSync(join(dir.path, "case-"));
  const outside = join(base, "outside");
  mkdirSync(outside);
  return { base, outside, target: join(base, "target") };
}

/** getDir's rejection (it must reject), with the connection closed afterwards. */
async function refused(addr: string, target: string): Promise<Error> {
  const g = await connect(addr);
  try {
    const e = await g.getDir("/remote", target).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(e).toBeInstanceOf(Error);
    return e!;
  } finally {
    g.close();
  }
}

test("preserveMode: a well-formed stream lands as sent, except setuid, setgid and sticky bits", async () => {
  const { target } = setup();
  const addr = await fakeAgent([
    { entry: { type: "dir", path: "bin", mode: 0o1777, mtime: 1.6e12 } },
    ...file("bin/su", "#!/bin/sh\n", { mode: 0o4755, mtime: 1.5e12 }),
    ...file("bin/sg", "x", { mode: 0o2711 }),
    { entry: { type: "symlink", path: "bin/passwd", mode: 0o777, mtime: 1.4e12, target: "/etc/passwd" } },
    { end: true },
    ok(2, 1, 1, 11),
  ]);
  const g = await connect(addr);
  expect(await g.getDir("/remote", target, { preserveMode: true })).toEqual({ files: 2, dirs: 1, symlinks: 1, bytes: 11, skipped: 0 });
  g.close();
  expect(lstatSync(join(target, "bin/su")).mode & 0o7777).toBe(0o755);
  expect(lstatSync(join(target, "bin/sg")).mode & 0o7777).toBe(0o711);
  expect(lstatSync(join(target, "bin")).mode & 0o7777).toBe(0o777);
  expect(lstatSync(join(target, "bin/su")).mtimeMs).toBe(1.5e12);
  expect(lstatSync(join(target, "bin")).mtimeMs).toBe(1.6e12);
  expect(readlinkSync(join(target, "bin/passwd"))).toBe("/etc/passwd");
  expect(readFileSync(join(target, "bin/su"), "utf8")).toBe("#!/bin/sh\n");
});

test("by default the guest's modes go under the host's umask, as a local program's files would", async () => {
  const { target } = setup();
  const addr = await fakeAgent([
    { entry: { type: "dir", path: "pub", mode: 0o777, mtime: 1.6e12 } },
    ...file("pub/w", "x", { mode: 0o4777 }),
    { end: true },
    ok(1, 1, 0, 1),
  ]);
  const g = await connect(addr);
  const old = process.umask(0o027);
  try {
    await g.getDir("/remote", target);
  } finally {
    process.umask(old);
  }
  g.close();
  expect(lstatSync(join(target, "pub/w")).mode & 0o7777).toBe(0o750);
  expect(lstatSync(join(target, "pub")).mode & 0o7777).toBe(0o750);
});

test.each([
  ["a .. component", "../escape"],
  ["a .. deeper down", "a/../../escape"],
  ["an absolute path", "/tmp/vge-host-abs-escape"],
  ["an empty component", "a//escape"],
  ["a NUL", "a\0b"],
])("an entry with %s: EPROTO, connection failed, nothing written", async (_what, path) => {
  const { target, outside, base } = setup();
  const addr = await fakeAgent([...file(path, "pwned\n"), { end: true }, ok(1, 0, 0, 6)]);
  const e = await refused(addr, target);
  expect(e).toBeInstanceOf(GuestError);
  expect((e as GuestError).code).toBe("EPROTO");
  expect(e.message).toContain("DIR_ENTRY: path");
  expect(listAll(outside)).toEqual([]);
  expect(readdirSync(base).filter((n) => n !== "target")).toEqual(["outside"]);
  expect(listAll(target)).toEqual([]);
  if (path.startsWith("/")) expect(existsSync(path)).toBe(false);
});

test("a symlink entry to outside, then a file under it: FileError ELOOP, nothing written outside", async () => {
  const { target, outside } = setup();
  const addr = await fakeAgent([
    { entry: { type: "symlink", path: "esc", mode: 0o777, mtime: 1e12, target: outside } },
    ...file("esc/pwned", "pwned\n"),
    { entry: { type: "dir", path: "esc", mode: 0o777, mtime: 1e12 } },
    ...file("esc/deeper/pwned", "pwned\n"),
    { end: true },
    ok(2, 1, 1, 12),
  ]);
  const e = await refused(addr, target);
  expect(e).toBeInstanceOf(FileError);
  expect((e as FileError).code).toBe("ELOOP");
  expect(e.message).toBe(`${target}/esc/pwned: ELOOP: refusing to write through the symlink esc`);
  expect(listAll(outside)).toEqual([]);
  expect(listAll(target)).toEqual(["esc"]);
});

test("a symlink already in the local target is not written through", async () => {
  const { target, outside } = setup();
  mkdirSync(target);
  symlinkSync(outside, join(target, "pre"));
  writeFileSync(join(outside, "keep"), "original\n");
  const addr = await fakeAgent([...file("pre/keep", "pwned\n"), { end: true }, ok(1, 0, 0, 6)]);
  const e = await refused(addr, target);
  expect((e as FileError).code).toBe("ELOOP");
  expect(readFileSync(join(outside, "keep"), "utf8")).toBe("original\n");
  expect(listAll(outside)).toEqual(["keep"]);
});

test("more bytes than announced: EFBIG, no temporary file left", async () => {
  const { target } = setup();
  const addr = await fakeAgent([...file("f", "12345", { size: 3 }), { end: true }, ok(1, 0, 0, 3)]);
  const e = await refused(addr, target);
  expect((e as FileError).code).toBe("EFBIG");
  expect(listAll(target)).toEqual([]);
});

test("a RESULT whose counts differ from what arrived: EIO", async () => {
  const { target } = setup();
  const addr = await fakeAgent([...file("f", "abc"), { end: true }, ok(5, 0, 0, 3)]);
  const e = await refused(addr, target);
  expect((e as FileError).code).toBe("EIO");
  expect(e.message).toContain("the agent reported");
});

test.each([
  ["a success without DIR_END", [...file("f", "abc"), ok(1, 0, 0, 3)], "before its DIR_END"],
  ["a RESULT that is neither ok nor failed", [{ end: true }, { result: { ok: "yes" } }], "ok must be a boolean"],
  ["counts that are not integers", [{ end: true }, { result: { ok: true, files: -1, dirs: 0, symlinks: 0, bytes: 0 } }], "non-negative integers"],
] as [string, Step[], string][])("%s: EPROTO, getDir rejects instead of waiting forever", async (_what, steps, msg) => {
  const { target } = setup();
  const e = await refused(await fakeAgent(steps), target);
  expect((e as GuestError).code).toBe("EPROTO");
  expect(e.message).toContain(msg);
});

test("a guest that ignores the window: EFLOW, the connection fails, no temporary file left", async () => {
  const { target } = setup();
  const chunk = new Uint8Array(65536);
  // When the overrun is noticed depends on how fast this host writes, so the fake streams a whole 64 MiB
  // file at once (then ends properly): a host that kept up would resolve, and the test would fail.
  const steps: Step[] = [{ entry: { type: "file", path: "big", mode: 0o644, mtime: 1e12, size: 64 << 20 } }];
  for (let i = 0; i < 1024; i++) steps.push({ data: chunk });
  steps.push({ end: true }, ok(1, 0, 0, 64 << 20));
  const addr = await fakeAgent(steps);
  const e = await refused(addr, target);
  expect(e).toBeInstanceOf(GuestError);
  // EFLOW, as for an execution's output or a GET's data: the code does not depend on which receiver noticed.
  expect((e as GuestError).code).toBe("EFLOW");
  expect(e.message).toMatch(/FILE_DATA: \d+ bytes exceed the \d+ bytes of credit/);
  expect(listAll(target).filter((n) => n.includes(".vge-"))).toEqual([]);
});

test("an agent without the dirs capability: ENOTSUP before anything is sent", async () => {
  const old = await agent({ welcome: { ...WELCOME, capabilities: ["exec", "files"] } });
  const g = await connect(old.addr);
  await expect(g.getDir("/x", dir.file("never"))).rejects.toMatchObject({ code: "ENOTSUP" });
  await expect(g.putDir(dir.path, "/x")).rejects.toMatchObject({ code: "ENOTSUP" });
  expect(existsSync(dir.file("never"))).toBe(false);
  g.close();
});

test("putDir: a local file that shrinks while it is sent ends the stream with DIR_END and rejects with EIO", async () => {
  const { base } = setup();
  mkdirSync(join(base, "src"));
  const big = join(base, "src", "big");
  writeFileSync(big, new Uint8Array(1 << 20));
  // A fake agent that takes one window, holds its credit until the file has been cut, then answers DIR_END.
  const seen: string[] = [];
  let received = 0;
  let gotWindow!: () => void;
  const windowFull = new Promise<void>((r) => (gotWindow = r));
  let grant!: (n: number) => void;
  const fake = await agent({
    welcome: WELCOME,
    onFrame: (f, sock) => {
      if (f.type === T.FILE_DATA) {
        received += f.payload.byteLength;
        if (received >= 262144 - 100) gotWindow();
        return;
      }
      seen.push(typeName(f.type));
      if (f.type === T.PUTDIR) grant = (n) => sock.write(encodeWindow(f.id, n));
      if (f.type === T.DIR_END) sock.write(encodeJson(T.RESULT, 1, { ok: false, errno: "EIO", message: "big: the stream ended after 262100 of 1048576 bytes", path: "big" }));
    },
  });
  const g = await connect(fake.addr);
  const p = g.putDir(join(base, "src"), "/remote").catch((e: Error) => e);
  await windowFull;
  writeFileSync(big, "");
  // Only what arrived comes back: more would be credit for bytes never sent, which the host refuses (EFLOW).
  grant(received);
  const e = (await p) as FileError;
  expect(e).toBeInstanceOf(FileError);
  expect(e.code).toBe("EIO");
  expect(e.message).toMatch(new RegExp(`^${big}: EIO: shrank to \\d+ bytes while being sent \\(announced 1048576\\)$`));
  expect(seen).toEqual(["PUTDIR", "DIR_ENTRY", "DIR_END"]);
  g.close();
});
