// vge cp -r against the real agent: directories both ways, cp -r naming, and one-line failures.
import { expect, test } from "bun:test";
import { lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync, chmodSync, existsSync } from "node:fs";
import { vge, vgeAgent } from "./_vge.ts";

const fx = vgeAgent("vge-cli-cpr-");
const { dir, addr: ADDR } = fx;

function makeTree(root: string): void {
  mkdirSync(`${root}/sub/deeper`, { recursive: true });
  writeFileSync(`${root}/a.txt`, "alpha\n");
  writeFileSync(`${root}/sub/deeper/b.sh`, "#!/bin/sh\n");
  chmodSync(`${root}/sub/deeper/b.sh`, 0o750);
  symlinkSync("sub/deeper/b.sh", `${root}/link`);
}

test("-r host → guest → host: the tree, modes and symlinks; a destination ending in / takes the source's name", async () => {
  makeTree(dir.file("tree"));
  const put = await vge(["cp", "-r", ADDR, dir.file("tree"), `:${dir.path}/guest/`], { timeoutMs: 30_000 });
  expect(put.code).toBe(1); // the guest's parent directory does not exist yet
  expect(put.stderr).toMatch(/^vge: error: .*ENOENT.*\n$/);
  mkdirSync(dir.file("guest"));
  const ok = await vge(["cp", "-r", ADDR, dir.file("tree"), `:${dir.path}/guest/`], { timeoutMs: 30_000 });
  expect(ok).toMatchObject({ code: 0, stdout: "", stderr: "" });
  expect(readFileSync(dir.file("guest/tree/a.txt"), "utf8")).toBe("alpha\n");
  expect(lstatSync(dir.file("guest/tree/sub/deeper/b.sh")).mode & 0o7777).toBe(0o750);
  expect(readlinkSync(dir.file("guest/tree/link"))).toBe("sub/deeper/b.sh");

  // Into an existing local directory: it lands under the source's name, as with cp -r.
  mkdirSync(dir.file("back"));
  const get = await vge(["cp", "--recursive", "-v", ADDR, `:${dir.path}/guest/tree`, dir.file("back")], { timeoutMs: 30_000 });
  expect(get.code).toBe(0);
  expect(get.stderr).toContain("vge: copied 2 files, 2 directories, 1 symlinks, 16 bytes");
  expect(readFileSync(dir.file("back/tree/sub/deeper/b.sh"), "utf8")).toBe("#!/bin/sh\n");
  expect(lstatSync(dir.file("back/tree/sub/deeper/b.sh")).mode & 0o7777).toBe(0o750);
  expect(readlinkSync(dir.file("back/tree/link"))).toBe("sub/deeper/b.sh");

  // A destination that does not exist is the copy itself.
  expect((await vge(["cp", "-r", ADDR, `:${dir.path}/guest/tree`, dir.file("named")])).code).toBe(0);
  expect(readFileSync(dir.file("named/a.txt"), "utf8")).toBe("alpha\n");
});

test("-r usage errors: exit 2, one line, nothing copied", async () => {
  writeFileSync(dir.file("plain"), "x");
  for (const [args, msg] of [
    [["cp", "-r", ADDR, dir.file("plain"), `:${dir.path}/nope`], /is not a local directory/],
    [["cp", "-r", ADDR, "-", `:${dir.path}/nope`], /- \(stdin\) is not one/],
    [["cp", "-r", "--mode", "644", ADDR, dir.file("tree"), `:${dir.path}/nope`], /--mode and --max-size apply to single files/],
  ] as const) {
    const r = await vge([...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  }
  expect(existsSync(dir.file("nope"))).toBe(false);
});

test("-r of a guest path that is not a directory: exit 1, one line", async () => {
  const r = await vge(["cp", "-r", ADDR, `:${dir.path}/plain`, dir.file("out")]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^vge: error: .*plain.*ENOTDIR.*\n$/);
});
