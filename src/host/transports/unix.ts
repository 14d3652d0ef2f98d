// Unix sockets through node:net (so they work on Node too). Listening is where guests dial in through a
// VMM: Firecracker / Cloud Hypervisor forward guest port P to `uds_path_P`; vfkit, krunkit and libkrun
// give each vsock port its own socket file.
import { lstatSync, unlinkSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { connectUnixNet, netConn } from "../../transport/netconn.ts";
import { GuestError } from "../errors.ts";
import type { Conn } from "../../transport/stream.ts";
import { AcceptQueue, ListenerClosedError, acceptAll } from "./_queue.ts";
import type { Accepted, ConnListener, DialOptions } from "./types.ts";

const onBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

/**
 * On Bun, a Bun socket (transport/conn.ts, as for AF_VSOCK): node:net's stream machinery on Bun cost the
 * host library about half its CPU time reading a stream (bench/README.md). On Node, node:net.
 */
export function connectUnix(path: string, opts: DialOptions = {}): Promise<Conn> {
  const o = { timeoutMs: opts.timeoutMs ?? 10_000, signal: opts.signal };
  return onBun ? import("./unix-bun.ts").then((m) => m.connectUnixBun(path, o)) : connectUnixNet(path, o);
}

function listenOnce(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once("error", onError);
    server.listen(path, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** A socket file left by a listener that died is taken over; a live one or a non-socket is an error. */
async function removeIfStale(path: string): Promise<void> {
  let isSocket = false;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new GuestError("EADDRINUSE", `listen unix-listen:${path}: EADDRINUSE (the path exists and is not a socket)`);
  try {
    (await connectUnix(path, { timeoutMs: 1000 })).close();
  } catch (e) {
    if ((e as { code?: string }).code === "ECONNREFUSED") return unlinkSync(path);
    throw e;
  }
  throw new GuestError("EADDRINUSE", `listen unix-listen:${path}: EADDRINUSE (another process is listening there)`);
}

export async function listenUnix(path: string, address = `unix-listen:${path}`): Promise<ConnListener> {
  const queue = new AcceptQueue<Accepted>((a) => a.conn.close());
  let count = 0;
  const push = (conn: Conn) => queue.push({ conn, peer: `${address}#${++count}` });
  const failed = (e: unknown) => new GuestError((e as { code?: string }).code ?? "ELISTEN", `listen ${address}: ${(e as { code?: string }).code ?? (e as Error).message}`, { cause: e });
  let server: { close(): void };
  if (onBun) {
    // As for connections: Bun's sockets on Bun. The path is cleared first, as node:net's EADDRINUSE does below.
    await removeIfStale(path);
    const { listenUnixBun } = await import("./unix-bun.ts");
    try {
      const s = listenUnixBun(path, push);
      server = { close: () => s.stop() };
    } catch (e) {
      throw failed(e);
    }
  } else {
    const net = createServer({ allowHalfOpen: true }, (sock) => push(netConn(sock)));
    server = net;
    try {
      await listenOnce(net, path);
    } catch (e) {
      if ((e as { code?: string }).code !== "EADDRINUSE") throw failed(e);
      await removeIfStale(path);
      await listenOnce(net, path);
    }
  }
  const ino = lstatSync(path).ino;
  return {
    address,
    accept: () => queue.take(),
    [Symbol.asyncIterator]: () => acceptAll(() => queue.take()),
    async close() {
      if (queue.isClosed) return;
      queue.close(new ListenerClosedError(`${address}: the listener is closed`));
      // Not awaited: node:net calls back only once every accepted connection has ended, and the guests
      // taken from this listener live on (Bun's stop(false) keeps them too). The listening socket closes now.
      server.close();
      // Only our own socket file: another listener may have taken the path over since.
      try {
        if (lstatSync(path).ino === ino) unlinkSync(path);
      } catch {
        // Already gone.
      }
    },
  };
}
