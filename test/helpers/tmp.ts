// Temporary directories for sockets and marker files. Short paths: sun_path holds at most 107 bytes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TempDir {
  path: string;
  /** A path inside the directory. */
  file(name: string): string;
  remove(): void;
}

export function tempDir(prefix = "vge-"): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, file: (name) => join(path, name), remove: () => rmSync(path, { recursive: true, force: true }) };
}
