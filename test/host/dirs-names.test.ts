// Names are bytes on Linux, the protocol's paths are JSON strings: a name that is not UTF-8 is skipped and
// counted by the sender (so is a symlink whose target is not UTF-8) (it used to be decoded to U+FFFD, then not found: the whole copy failed ENOENT).
// An entry that vanishes while the tree is walked is skipped and counted too, not fatal. Both directions
// against the compiled agent, and the walk itself with a file and a directory deleted mid-walk.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type Guest } from "../../src/host/index.ts";
import { sendTree } from "../../src/archive/send.ts";
import { Credit } from "../../src/protocol/v2/credit.ts";
import { FrameDecoder, T, decodeJson } from "../../src/protocol/index.ts";
import type { RunningAgent } from "../helpers/agent.ts";
import { listeningAgent, stop, tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-dirnames-");
let agent: RunningAgent;
let guest: Guest;

beforeAll(async () => {
  agent = await listeningAgent(dir.file("agent.sock"), 120_000);
  guest = await connect(`unix:${dir.file("agent.sock")}`);
}, 120_000);

afterAll(() => {
  guest?.close();
  stop(agent);
  dir.remove();
});

/** Latin-1 "café" and "naïve": valid names on Linux, not UTF-8. */
const LATIN1_FILE = Buffer.from([0x63, 0x61, 0x66, 0xe9]);
const LATIN1_DIR = Buffer.from([0x6e, 0x61, 0xef, 0x76, 0x65]);

/** ok.txt, sub/inner, a file and a directory (with a file in it) whose names are not UTF-8, a symlink whose target is not. */
function makeTree(root: string): void {
  mkdirSync(join(root, "sub"), { recursive: true });
  writeFileSync(join(root, "ok.txt"), "ok\n");
  writeFileSync(join(root, "sub", "inner"), "inner\n");
  writeFileSync(Buffer.concat([Buffer.from(`${root}/`), LATIN1_FILE]), "latin-1 file\n");
  const d = Buffer.concat([Buffer.from(`${root}/sub/`), LATIN1_DIR]);
  mkdirSync(d);
  writeFileSync(Buffer.concat([d, Buffer.from("/hidden")]), "in a latin-1 directory\n");
  symlinkSync(LATIN1_FILE, join(root, "link"));
}

test.each([
  ["getDir (the agent walks)", "get"],
  ["putDir (the host walks)", "put"],
])("%s: names that are not UTF-8 are skipped and counted; the rest is copied", async (_what, way) => {
  const src = dir.file(`src-${way}`);
  const dst = dir.file(`dst-${way}`);
  makeTree(src);
  const info = way === "get" ? await guest.getDir(src, dst) : await guest.putDir(src, dst);
  expect(info).toEqual({ files: 2, dirs: 1, symlinks: 0, bytes: 9, skipped: 3 });
  expect(readdirSync(dst).sort()).toEqual(["ok.txt", "sub"]);
  expect(readdirSync(join(dst, "sub"))).toEqual(["inner"]);
  expect(readFileSync(join(dst, "sub", "inner"), "utf8")).toBe("inner\n");
});

/** Runs sendTree over `root`, calling `onEntry` as each DIR_ENTRY goes out; returns the counts and the paths sent. */
async function walkSending(root: string, onEntry: (path: string) => void) {
  const dec = new FrameDecoder();
  const paths: string[] = [];
  const send = async (bytes: Uint8Array) => {
    for (const f of dec.push(bytes)) {
      if (f.type !== T.DIR_ENTRY) continue;
      const p = String(decodeJson(f).path);
      paths.push(p);
      onEntry(p);
    }
  };
  const counts = await sendTree(root, 1, send, new Credit(Number.MAX_SAFE_INTEGER));
  return { counts, paths };
}

test("a file and a directory deleted while the tree is walked: skipped and counted, the walk goes on", async () => {
  const root = dir.file("walk");
  mkdirSync(join(root, "b-dir"), { recursive: true });
  for (const n of ["a", "c", "d", "e"]) writeFileSync(join(root, n), n);
  writeFileSync(join(root, "b-dir", "x"), "x");
  // Once "a" has gone out, readdir has listed everything: "c" and the contents of "b-dir" vanish then.
  const { counts, paths } = await walkSending(root, (p) => {
    if (p !== "a") return;
    unlinkSync(join(root, "c"));
    rmSync(join(root, "b-dir"), { recursive: true });
  });
  // "b-dir" itself vanished before its lstat: skipped, like "c"; the walk goes on to d and e.
  expect(paths).toEqual(["a", "d", "e"]);
  expect(counts).toEqual({ files: 3, dirs: 0, symlinks: 0, bytes: 3, skipped: 2 });
});

test("a directory emptied after its own entry went out is sent empty", async () => {
  const root = dir.file("walk2");
  mkdirSync(join(root, "d"), { recursive: true });
  writeFileSync(join(root, "d", "x"), "x");
  writeFileSync(join(root, "z"), "z");
  const { counts, paths } = await walkSending(root, (p) => {
    if (p === "d") rmSync(join(root, "d"), { recursive: true });
  });
  expect(paths).toEqual(["d", "z"]);
  expect(counts).toEqual({ files: 1, dirs: 1, symlinks: 0, bytes: 1, skipped: 0 });
});
