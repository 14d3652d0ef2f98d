// One `case` per transport: an address in, a raw connected stream (or a listener of them) out.
import { fcListenPath, formatAddress, isListenAddress, type Address } from "../address.ts";
import type { Conn } from "../../transport/stream.ts";
import { GuestError } from "../errors.ts";
import { connectFirecracker } from "./firecracker.ts";
import type { ConnListener, DialOptions } from "./types.ts";
import { connectUnix, listenUnix } from "./unix.ts";

/**
 * AF_VSOCK goes through bun:ffi, so its module is imported only here, when a vsock address is used: on
 * Node, and in a vge binary given a Unix address, libc's FFI table is never opened. The check comes
 * before any socket exists.
 */
async function vsockModule(address: string): Promise<typeof import("./vsock.ts")> {
  if (typeof (globalThis as { Bun?: unknown }).Bun === "undefined") {
    throw new GuestError("ENOTSUP", `${address}: AF_VSOCK needs Bun or the standalone vge binary (it goes through bun:ffi); on Node use unix:, unix-listen:, fc: or fc-listen: addresses`);
  }
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
      return (await vsockModule(formatAddress(a))).connectVsock({ cid: a.cid, port: a.port }, opts);
    default:
      throw new GuestError("EINVAL", `${formatAddress(a)} is a listen address: guests dial in there; use listen()`);
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
      return (await vsockModule(address)).listenVsock({ cid: a.cid, port: a.port }, address);
    default:
      if (!isListenAddress(a)) throw new GuestError("EINVAL", `${address} is a connect address: it dials a listening guest; use connect()`);
      throw new GuestError("EINVAL", `unsupported address ${address}`);
  }
}
