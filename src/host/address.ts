// The one address syntax of the host library and `vge`, for every transport. Parsing is pure and strict:
// anything not understood is an AddressError with one line saying what was expected.
//
//   vsock:CID:PORT            connect to a guest agent listening on AF_VSOCK (Bun only)
//   vsock-listen:PORT         listen on AF_VSOCK for guests that dial in (any local CID; Bun only)
//   vsock-listen:CID:PORT     the same, bound to one CID (-1 = any)
//   unix:PATH                 connect to a Unix socket where an agent (or a proxy) listens
//   unix-listen:PATH          listen on a Unix socket: vfkit/krunkit/libkrun per-port sockets, or
//                             Firecracker / Cloud Hypervisor's `uds_path_PORT` for guest-initiated connections
//   fc:UDS_PATH:PORT          connect through a Firecracker / Cloud Hypervisor / vhost-device-vsock muxer:
//                             write `CONNECT PORT\n`, expect `OK <hostport>\n`
//   fc-listen:UDS_PATH:PORT   shorthand for unix-listen:UDS_PATH_PORT (where those VMMs forward guest port PORT)
//
// PATH may contain ':'; for fc and fc-listen the port is what follows the last ':'.

export type Address =
  | { kind: "vsock"; cid: number; port: number }
  | { kind: "vsock-listen"; cid: number; port: number }
  | { kind: "unix"; path: string }
  | { kind: "unix-listen"; path: string }
  | { kind: "fc"; path: string; port: number }
  | { kind: "fc-listen"; path: string; port: number };

export const ADDRESS_FORMS = ["vsock:CID:PORT", "vsock-listen:[CID:]PORT", "unix:PATH", "unix-listen:PATH", "fc:UDS_PATH:PORT", "fc-listen:UDS_PATH:PORT"] as const;

/** VMADDR_CID_ANY, written -1 in addresses as in the original tool. */
export const CID_ANY = 0xffffffff;
const U32_MAX = 0xffffffff;
/** sun_path holds 108 bytes; we keep one for the terminator, as src/sys does. */
const UNIX_PATH_MAX = 107;

export class AddressError extends Error {
  override name = "AddressError";
  readonly code = "EINVAL";
}

function bad(text: string, why: string): never {
  throw new AddressError(`bad address "${text}": ${why}`);
}

function u32(text: string, what: string, value: string, opts: { anyOk?: boolean } = {}): number {
  if (opts.anyOk && value === "-1") return CID_ANY;
  if (!/^\d+$/.test(value)) bad(text, `${what} must be a whole number 0..${U32_MAX - 1}${opts.anyOk ? " or -1" : ""}, got "${value}"`);
  const n = Number(value);
  // U32_MAX is VMADDR_PORT_ANY / VMADDR_CID_ANY: never a peer to dial or a port to wait on.
  if (n >= U32_MAX) bad(text, `${what} must be 0..${U32_MAX - 1}, got ${value}`);
  return n;
}

function unixPath(text: string, path: string): string {
  if (path === "") bad(text, "the socket path is empty");
  if (path.includes("\0")) bad(text, "the socket path contains a NUL byte");
  const bytes = new TextEncoder().encode(path).byteLength;
  if (bytes > UNIX_PATH_MAX) bad(text, `the socket path is ${bytes} bytes; Unix sockets allow ${UNIX_PATH_MAX}`);
  return path;
}

function pathAndPort(text: string, rest: string): { path: string; port: number } {
  const colon = rest.lastIndexOf(":");
  if (colon < 0) bad(text, "expected UDS_PATH:PORT");
  return { path: unixPath(text, rest.slice(0, colon)), port: u32(text, "port", rest.slice(colon + 1)) };
}

export function parseAddress(text: string): Address {
  const colon = text.indexOf(":");
  if (colon < 0) bad(text, `expected one of ${ADDRESS_FORMS.join(", ")}`);
  const scheme = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  switch (scheme) {
    case "vsock": {
      const parts = rest.split(":");
      if (parts.length !== 2) bad(text, "expected vsock:CID:PORT");
      return { kind: "vsock", cid: u32(text, "CID", parts[0]!), port: u32(text, "port", parts[1]!) };
    }
    case "vsock-listen": {
      const parts = rest.split(":");
      if (parts.length > 2) bad(text, "expected vsock-listen:PORT or vsock-listen:CID:PORT");
      const cid = parts.length === 2 ? u32(text, "CID", parts[0]!, { anyOk: true }) : CID_ANY;
      return { kind: "vsock-listen", cid, port: u32(text, "port", parts[parts.length - 1]!) };
    }
    case "unix":
      return { kind: "unix", path: unixPath(text, rest) };
    case "unix-listen":
      return { kind: "unix-listen", path: unixPath(text, rest) };
    case "fc":
      return { kind: "fc", ...pathAndPort(text, rest) };
    case "fc-listen": {
      const a = pathAndPort(text, rest);
      unixPath(text, fcListenPath(a.path, a.port));
      return { kind: "fc-listen", ...a };
    }
    default:
      return bad(text, `unknown kind "${scheme}"; expected one of ${ADDRESS_FORMS.join(", ")}`);
  }
}

export function formatAddress(a: Address): string {
  switch (a.kind) {
    case "vsock":
      return `vsock:${a.cid}:${a.port}`;
    case "vsock-listen":
      return a.cid === CID_ANY ? `vsock-listen:${a.port}` : `vsock-listen:${a.cid}:${a.port}`;
    case "unix":
    case "unix-listen":
      return `${a.kind}:${a.path}`;
    case "fc":
    case "fc-listen":
      return `${a.kind}:${a.path}:${a.port}`;
  }
}

/** Listen addresses wait for guests to dial in; the others dial a listening guest. */
export function isListenAddress(a: Address): a is Extract<Address, { kind: "vsock-listen" | "unix-listen" | "fc-listen" }> {
  return a.kind === "vsock-listen" || a.kind === "unix-listen" || a.kind === "fc-listen";
}

/** The socket file a fc-listen address listens on: Firecracker's `uds_path` + `_` + port. */
export function fcListenPath(path: string, port: number): string {
  return `${path}_${port}`;
}

export function toAddress(a: string | Address): Address {
  return typeof a === "string" ? parseAddress(a) : a;
}
