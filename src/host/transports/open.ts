// One `case` per transport: an address in, a raw connected stream (or a listener of them) out.
import { fcListenPath, formatAddress, isListenAddress, type Address } from "../address.ts";
import type { Conn } from "../../transport/conn.ts";
import { connectFirecracker } from "./firecracker.ts";
import type { ConnListener, DialOptions } from "./types.ts";
import { connectUnix, listenUnix } from "./unix.ts";

async function vsockModule(): Promise<typeof import("./vsock.ts")> {
  if (typeof (globalThis as { Bun?: unknown }).Bun === "undefined") throw new Error("vsock addresses need Bun (AF_VSOCK goes through bun:ffi); on Node use unix:, unix-listen: or fc: addresses");
  return import("./vsock.ts");
}

/** Dials a connect address; for a listen address, use listenConns. */
export async function connectConn(a: Address, opts: DialOptions = {}): Promise<Conn> {
  switch (a.kind) {
    case "unix":
      return connectUnix(a.path, opts);
    case "fc":
      return connectFirecracker(a.path, a.port, opts);
    case "vsock":
      return (await vsockModule()).connectVsock({ cid: a.cid, port: a.port }, opts);
    default:
      throw new Error(`${formatAddress(a)} is a listen address: guests dial in there; use listen()`);
  }
}

export async function listenConns(a: Address): Promise<ConnListener> {
  const address = formatAddress(a);
  switch (a.kind) {
    case "unix-listen":
      return listenUnix(a.path, address);
    case "fc-listen":
      return listenUnix(fcListenPath(a.path, a.port), address);
    case "vsock-listen":
      return (await vsockModule()).listenVsock({ cid: a.cid, port: a.port }, address);
    default:
      if (!isListenAddress(a)) throw new Error(`${address} is a connect address: it dials a listening guest; use connect()`);
      throw new Error(`unsupported address ${address}`);
  }
}
