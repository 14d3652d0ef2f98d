// Bodies of the TCP stream frames (PROTOCOL.md §13) and the checks that turn a host's TCP_OPEN into typed
// values. Pure: no sockets here, so both ends (and the CLI, before it sends anything) use the same rules.
import { ProtocolError } from "./frame.ts";

/** Longest host string accepted: a DNS name is at most 253 characters; an IPv6 literal is shorter. */
export const MAX_TCP_HOST = 253;

export interface TcpOpen {
  /** A DNS name, an IPv4 address or an IPv6 address (no brackets), as the guest resolves it. */
  host: string;
  /** 1..65535. */
  port: number;
}

/** TCP_OPENED: where the agent's socket got connected (the resolved peer). */
export interface TcpOpened {
  address?: string;
  port?: number;
}

/** TCP_CLOSED, the last frame of a stream: a clean end, or why it failed (errno such as ECONNREFUSED). */
export type TcpClosed = { ok: true } | { ok: false; errno: string; message: string };

const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isIPv6(s: string): boolean {
  // A trailing dotted quad (::ffff:1.2.3.4) stands for the last two groups.
  const v4 = /(?<=:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4 && !IPV4.test(v4[1]!)) return false;
  const groups = v4 ? `${s.slice(0, v4.index)}0:0` : s;
  const halves = groups.split("::");
  if (halves.length > 2) return false;
  const parts = halves.map((h) => (h === "" ? [] : h.split(":")));
  if (!parts.every((p) => p.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g)))) return false;
  const n = parts[0]!.length + (parts[1]?.length ?? 0);
  return halves.length === 2 ? n < 8 : n === 8;
}

/** Why `host` is not an acceptable TCP target, or undefined when it is. */
export function tcpHostProblem(host: unknown): string | undefined {
  if (typeof host !== "string" || host === "") return "host must be a non-empty string";
  if (host.length > MAX_TCP_HOST) return `host is longer than ${MAX_TCP_HOST} characters`;
  if (host.includes("\0")) return "host cannot contain NUL";
  if (host.includes(":")) return isIPv6(host) ? undefined : `host ${JSON.stringify(host)} is not a valid IPv6 address`;
  if (/^[\d.]+$/.test(host)) return IPV4.test(host) ? undefined : `host ${JSON.stringify(host)} is not a valid IPv4 address`;
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  if (!name.split(".").every((l) => LABEL.test(l))) return `host ${JSON.stringify(host)} is not a hostname or an IP address`;
  return undefined;
}

export function tcpPortProblem(port: unknown): string | undefined {
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) return `port must be an integer 1..65535, got ${JSON.stringify(port)}`;
  return undefined;
}

/** Checks a TCP_OPEN body; anything malformed is a ProtocolError naming the field. */
export function decodeTcpOpen(b: Record<string, unknown>): TcpOpen {
  const problem = tcpHostProblem(b.host) ?? tcpPortProblem(b.port);
  if (problem) throw new ProtocolError(`TCP_OPEN: ${problem}`);
  return { host: b.host as string, port: b.port as number };
}

/** An IPv6 scope after `%` (fe80::1%eth0): an interface name or number. */
const ZONE = /^[A-Za-z0-9_.-]{1,64}$/;

/** Why `address` is not an IP address as a connected socket reports it, or undefined when it is one. */
function peerAddressProblem(address: unknown): string | undefined {
  if (typeof address !== "string") return `address must be a string, got ${typeof address}`;
  const [ip, zone, ...more] = address.split("%");
  const ok = more.length === 0 && (zone === undefined ? /^[\d.]+$/.test(ip!) || ip!.includes(":") : ip!.includes(":") && ZONE.test(zone));
  if (!ok || tcpHostProblem(ip) !== undefined) return `address ${JSON.stringify(address.slice(0, 80))} is not an IP address`;
  return undefined;
}

/**
 * Checks a TCP_OPENED body: the peer the agent reached, an IP address and a port, each optional (a socket
 * may not know its peer). What a guest puts here reaches callers and terminals: anything else is EPROTO.
 */
export function decodeTcpOpened(b: Record<string, unknown>): TcpOpened {
  const problem = (b.address === undefined ? undefined : peerAddressProblem(b.address)) ?? (b.port === undefined ? undefined : tcpPortProblem(b.port));
  if (problem) throw new ProtocolError(`TCP_OPENED: ${problem}`);
  return { ...(b.address !== undefined ? { address: b.address as string } : {}), ...(b.port !== undefined ? { port: b.port as number } : {}) };
}

/** Checks a TCP_CLOSED body (the host's side of the same rules). */
export function decodeTcpClosed(b: Record<string, unknown>): TcpClosed {
  if (b.ok === true) return { ok: true };
  if (b.ok === false && typeof b.errno === "string" && typeof b.message === "string") return { ok: false, errno: b.errno, message: b.message };
  throw new ProtocolError("TCP_CLOSED: needs ok:true, or ok:false with errno and message");
}
