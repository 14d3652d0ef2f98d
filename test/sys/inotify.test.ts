// inotify: the event records as the kernel lays them out, and a real watch on a folder seeing a name appear.
import { expect, test } from "bun:test";
import { mkdtempSync, renameSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IN_ATTRIB, IN_CREATE, IN_MOVED_TO, close, inotifyAddWatch, inotifyInit, inotifyRead, parseInotifyEvents } from "../../src/sys/index.ts";
import { SyscallError } from "../../src/sys/_errno.ts";

/** One struct inotify_event: i32 wd, u32 mask, u32 cookie, u32 len, then the name NUL-padded to len. */
function record(wd: number, mask: number, name: string, len = name ? Math.ceil((name.length + 1) / 16) * 16 : 0): Uint8Array {
  const out = new Uint8Array(16 + len);
  const v = new DataView(out.buffer);
  v.setInt32(0, wd, true);
  v.setUint32(4, mask, true);
  v.setUint32(12, len, true);
  out.set(new TextEncoder().encode(name), 16);
  return out;
}

test.each([
  ["one event with a padded name", [record(1, IN_CREATE, "agent.sock")], [{ wd: 1, mask: IN_CREATE, name: "agent.sock" }]],
  ["an event on the folder itself (no name)", [record(2, 0x8000, "")], [{ wd: 2, mask: 0x8000, name: "" }]],
  ["several in one read", [record(1, IN_CREATE, "a"), record(1, IN_ATTRIB, "bb"), record(1, IN_MOVED_TO, "c.sock")], [
    { wd: 1, mask: IN_CREATE, name: "a" },
    { wd: 1, mask: IN_ATTRIB, name: "bb" },
    { wd: 1, mask: IN_MOVED_TO, name: "c.sock" },
  ]],
  ["a truncated header is ignored", [record(1, IN_CREATE, "a").subarray(0, 10)], []],
])("parseInotifyEvents: %s", (_what, parts, want) => {
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    bytes.set(p, off);
    off += p.byteLength;
  }
  expect(parseInotifyEvents(bytes)).toEqual(want);
});

test("a watch on a folder reports a name created, renamed into place and chmodded; nothing when idle", () => {
  const dir = mkdtempSync(join(tmpdir(), "vge-inotify-"));
  const fd = inotifyInit();
  try {
    inotifyAddWatch(fd, dir, IN_CREATE | IN_MOVED_TO | IN_ATTRIB);
    expect(inotifyRead(fd)).toEqual([]); // non-blocking: nothing yet, no wait
    writeFileSync(join(dir, "tmp"), "");
    renameSync(join(dir, "tmp"), join(dir, "host.sock"));
    chmodSync(join(dir, "host.sock"), 0o600);
    const got = inotifyRead(fd).map((e) => [e.name, e.mask & (IN_CREATE | IN_MOVED_TO | IN_ATTRIB)]);
    expect(got).toEqual([
      ["tmp", IN_CREATE],
      ["host.sock", IN_MOVED_TO],
      ["host.sock", IN_ATTRIB],
    ]);
  } finally {
    close(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a folder that is not there: inotify_add_watch: ENOENT", () => {
  const fd = inotifyInit();
  try {
    expect(() => inotifyAddWatch(fd, "/nonexistent-vge-folder", IN_CREATE)).toThrow(new SyscallError("inotify_add_watch", 2));
  } finally {
    close(fd);
  }
});
