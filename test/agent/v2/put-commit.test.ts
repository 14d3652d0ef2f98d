// The decision at the end of a PUT (src/agent/v2/files.ts commitRename): the rename is the commit point.
// A directory fsync that fails after it must not turn a file that is in place into ok:false. A real
// failing fsync of a directory cannot be made here (tmpfs and ext4 accept it, and root passes every
// permission check), so the fsync is injected; the rename is the real one, on real files.
import { afterEach, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { rename } from "node:fs/promises";
import { commitRename } from "../../../src/agent/v2/files.ts";
import { tempDir, type TempDir } from "../../helpers/tmp.ts";

let dir: TempDir | undefined;
afterEach(() => dir?.remove());

const eio = () => Promise.reject(Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" }));

test("the directory fsync fails after the rename: the file is in place and the outcome is a warning, not a failure", async () => {
  dir = tempDir("vge-put-commit-");
  const tmp = dir.file(".f.vge-1");
  const dest = dir.file("f");
  writeFileSync(dest, "old");
  writeFileSync(tmp, "new");
  const out = await commitRename(() => rename(tmp, dest), eio);
  expect(readFileSync(dest, "utf8")).toBe("new");
  expect(existsSync(tmp)).toBe(false);
  expect(out.warning).toContain("EIO");
  expect(out.warning).toContain("in place");
});

test("the rename fails: that is the PUT's failure (thrown), the old file stays, no fsync is tried", async () => {
  dir = tempDir("vge-put-commit-");
  const dest = dir.file("f");
  writeFileSync(dest, "old");
  let synced = false;
  const err = await commitRename(
    () => rename(dir!.file("missing"), dest),
    async () => void (synced = true),
  ).catch((e) => e as { code?: string });
  expect((err as { code?: string }).code).toBe("ENOENT");
  expect(synced).toBe(false);
  expect(readFileSync(dest, "utf8")).toBe("old");
});

test("both succeed: no warning", async () => {
  dir = tempDir("vge-put-commit-");
  writeFileSync(dir.file("t"), "x");
  let synced = false;
  expect(await commitRename(() => rename(dir!.file("t"), dir!.file("f")), async () => void (synced = true))).toEqual({});
  expect(synced).toBe(true);
});
