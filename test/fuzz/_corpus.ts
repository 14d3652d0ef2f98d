// The regression corpus: every case that ever broke the agent, replayed by corpus.test.ts on every run.
// A case is stored as the bytes written (base64, one entry per write) with how it was found, so it
// replays without the mutator; the fuzz directory's path inside it is swapped for the replay's own.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Case } from "./_mutate.ts";

export const CORPUS_DIR = join(import.meta.dir, "corpus");

export interface Saved {
  /** The run's seed and the case number: VGE_FUZZ_SEED=seed VGE_FUZZ_CASE=case reproduces it. */
  seed: number;
  case: number;
  found: string;
  reason: string;
  seedSession: string;
  mutations: string[];
  /** The fuzz directory the bytes name; replaced by the replay's (same length). */
  dir: string;
  gapsMs: number[];
  chunks: string[];
}

export function corpusName(seed: number, n: number): string {
  return `seed-${seed.toString(16)}-case-${n}.json`;
}

/** A failure's kind: its reason without the numbers (connection counts, ids, lengths) that differ each time. */
export const signature = (reason: string) => reason.replace(/\d+/g, "N");

/** Cases of one kind the corpus keeps: a few inputs per bug, not hundreds of the same one. */
const PER_KIND = 3;

/** Writes the case unless it, or PER_KIND of its kind, are there already; returns the file name or undefined. */
export function save(seed: number, n: number, c: Case, reason: string, dir: string): string | undefined {
  const name = corpusName(seed, n);
  mkdirSync(CORPUS_DIR, { recursive: true });
  const file = join(CORPUS_DIR, name);
  const kind = signature(reason);
  const same = savedNames().filter((m) => signature((JSON.parse(readFileSync(join(CORPUS_DIR, m), "utf8")) as Saved).reason) === kind).length;
  if (same >= PER_KIND && !existsSync(file)) return undefined;
  if (!existsSync(file)) {
    const saved: Saved = {
      seed,
      case: n,
      found: new Date().toISOString(),
      reason,
      seedSession: c.seedName,
      mutations: c.notes,
      dir,
      gapsMs: c.gapsMs,
      chunks: c.chunks.map((b) => Buffer.from(b).toString("base64")),
    };
    writeFileSync(file, `${JSON.stringify(saved, null, 1)}\n`);
  }
  return name;
}

export function savedNames(): string[] {
  return existsSync(CORPUS_DIR) ? readdirSync(CORPUS_DIR).filter((n) => n.endsWith(".json")).sort() : [];
}

/** A saved case as a Case for `dir`: the old directory's path, wherever it is in the stream, becomes `dir`. */
export function load(name: string, dir: string): { saved: Saved; c: Case } {
  const saved = JSON.parse(readFileSync(join(CORPUS_DIR, name), "utf8")) as Saved;
  const parts = saved.chunks.map((s) => new Uint8Array(Buffer.from(s, "base64")));
  if (saved.dir.length !== dir.length) throw new Error(`${name}: saved for a directory of ${saved.dir.length} characters, replaying in ${dir} (${dir.length})`);
  const all = Buffer.concat(parts);
  const from = Buffer.from(saved.dir);
  for (let at = all.indexOf(from); at >= 0; at = all.indexOf(from, at + 1)) all.set(Buffer.from(dir), at);
  let off = 0;
  const chunks = parts.map((p) => {
    const out = new Uint8Array(all.subarray(off, off + p.byteLength));
    off += p.byteLength;
    return out;
  });
  return { saved, c: { chunks, gapsMs: saved.gapsMs, notes: saved.mutations, seedName: saved.seedSession } };
}
