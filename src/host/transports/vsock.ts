// Kernel AF_VSOCK, Bun only: sockets come from the FFI layer (src/sys) and are adopted into Bun's event
// loop. Loaded with a dynamic import, so that the rest of the library runs on Node without bun:ffi.
import { POLLIN } from "../../sys/socket.ts";
import { vsockAccept, vsockListen, waitFd } from "../../sys/vsock.ts";
import { close } from "../../sys/socket.ts";
import type { VsockAddr } from "../../sys/sockaddr.ts";
import { adoptFd, type Conn } from "../../transport/conn.ts";
import { dial } from "../../transport/dial.ts";
import { GuestError } from "../errors.ts";
import { AcceptQueue, ListenerClosedError, acceptAll } from "./_queue.ts";
import type { Accepted, ConnListener, DialOptions } from "./types.ts";

/** Connects to a guest agent that listens (`vsock_guest_exec --listen`). */
export async function connectVsock(addr: VsockAddr, opts: DialOptions = {}): Promise<Conn> {
  const fd = await dial({ kind: "vsock", ...addr }, { retryMs: 0, signal: opts.signal });
  return adoptFd(fd);
}

/** Listens for guests that dial the host (the original direction; QEMU vhost-vsock). */
export function listenVsock(addr: VsockAddr, address: string): ConnListener {
  let fd: number;
  try {
    fd = vsockListen(addr);
  } catch (e) {
    throw new GuestError((e as { code?: string }).code ?? "ELISTEN", `listen ${address}: ${(e as Error).message}`, { cause: e });
  }
  const queue = new AcceptQueue<Accepted>((a) => a.conn.close());
  const stop = new AbortController();
  const loop = (async () => {
    try {
      while (!stop.signal.aborted) {
        await waitFd(fd, POLLIN, { signal: stop.signal });
        for (let got = vsockAccept(fd); got; got = vsockAccept(fd)) {
          queue.push({ conn: await adoptFd(got.fd), peer: `vsock:${got.peer.cid}:${got.peer.port}` });
        }
      }
    } catch (e) {
      if (!stop.signal.aborted) queue.close(new GuestError((e as { code?: string }).code ?? "EACCEPT", `${address}: accept failed: ${(e as Error).message}`, { cause: e }));
    } finally {
      // Closed only once the loop no longer polls it, so the number is never polled after reuse.
      close(fd);
    }
  })();
  return {
    address,
    accept: () => queue.take(),
    [Symbol.asyncIterator]: () => acceptAll(() => queue.take()),
    async close() {
      queue.close(new ListenerClosedError(`${address}: the listener is closed`));
      stop.abort();
      await loop;
    },
  };
}
