// Reading a token file (PROTOCOL.md §11), for the agent and the host alike: at most MAX_TOKEN_FILE bytes,
// so that a wrong file without end (`/dev/zero`) cannot fill memory, and errors that name the file and the
// problem (missing, unreadable, empty, too short, too long), never a byte of what is in it.
import { closeSync, openSync, readSync } from "node:fs";
import { TokenError, tokenFromFile } from "../protocol/v2/auth.ts";

/** Most of a token file that is read: a token is a few dozen bytes, so more is the wrong file. */
export const MAX_TOKEN_FILE = 64 * 1024;

/** The token in the file at `path`, read once (a pipe such as `<(pass show vm)` works too), or a TokenError. */
export function readTokenFile(path: string): Uint8Array {
  const buf = new Uint8Array(MAX_TOKEN_FILE + 1);
  let n = 0;
  try {
    const fd = openSync(path, "r");
    try {
      for (let got = -1; got !== 0 && n < buf.byteLength; n += got) got = readSync(fd, buf, n, buf.byteLength - n, null);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    // Node's message minus the path it repeats: "ENOENT: no such file or directory".
    const err = e as NodeJS.ErrnoException;
    const why = /^E[A-Z0-9]+: [^,]+/.exec(err.message)?.[0] ?? err.code ?? err.message;
    throw new TokenError(`token file ${path}: cannot read it: ${why}`);
  }
  try {
    if (n > MAX_TOKEN_FILE) throw new TokenError(`token file ${path}: more than ${MAX_TOKEN_FILE} bytes; a token is one short line (make one with: head -c 32 /dev/urandom | base64 > FILE)`);
    // A copy: the read buffer is wiped below rather than left holding the secret for the collector.
    return tokenFromFile(buf.subarray(0, n), path);
  } finally {
    buf.fill(0);
  }
}
