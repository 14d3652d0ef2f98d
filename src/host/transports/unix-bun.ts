// Dialing and listening on a Unix socket with Bun's own sockets (Bun only: loaded by unix.ts when it runs on Bun). The
// connection is transport/conn.ts's, the one AF_VSOCK connections and the agent use: reads straight from
// Bun's data callback, writes that resolve at once when the kernel took them. No bun:ffi call is made
// (conn.ts reaches libc only to half-close an fd it adopted).
import { randomBytes } from "node:crypto";
import { renameSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { serverHandlers, type Conn } from "../../transport/conn.ts";
import { ConnectError } from "../../transport/netconn.ts";

export function connectUnixBun(path: string, opts: { timeoutMs?: number; signal?: AbortSignal }): Promise<Conn> {
  return new Promise((resolve, reject) => {
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (err: Error | undefined, conn?: Conn) => {
      if (done) return conn?.close();
      done = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve(conn!);
    };
    const onAbort = () => finish(new ConnectError("ECANCELED", "aborted"));
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    if (opts.timeoutMs !== undefined) timer = setTimeout(() => finish(new ConnectError("ETIMEDOUT", `no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    // A connection that completes after the timeout or an abort is closed at once (finish's first line).
    Bun.connect({ unix: path, allowHalfOpen: true, socket: serverHandlers((conn) => finish(undefined, conn)) } as never).catch((e: { code?: string; message?: string }) =>
      finish(new ConnectError(e.code ?? "EIO", e.code ? "" : (e.message ?? ""))),
    );
  });
}

/**
 * Listens on `path` with Bun.listen, each accepted connection a conn.ts Conn. Bun binds a fresh name next
 * to `path` and the file is renamed into place: Bun's stop() unlinks the path it bound, whoever's file is
 * there by then, and the listener must remove only its own (unix.ts checks the inode). The caller has
 * cleared the path first (a live listener or a non-socket is refused there).
 */
export function listenUnixBun(path: string, accepted: (conn: Conn) => void): { stop(): void } {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}`);
  const server = Bun.listen({ unix: tmp, allowHalfOpen: true, data: undefined as never, socket: serverHandlers(accepted) } as never) as { stop(closeActive?: boolean): void };
  try {
    renameSync(tmp, path);
  } catch (e) {
    server.stop();
    throw e;
  }
  // Accepted connections live on (the guests taken from this listener): only the listening socket stops.
  return { stop: () => server.stop(false) };
}
