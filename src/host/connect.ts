// connect(): dial a listening guest agent and say hello, retrying while it is not there yet.
import { formatAddress, toAddress, type Address } from "./address.ts";
import { GuestError } from "./errors.ts";
import { Guest, type GuestOptions } from "./guest.ts";
import { connectConn } from "./transports/open.ts";
import { retrying } from "../transport/retry.ts";
import { withToken } from "./_auth.ts";

export interface ConnectOptions extends GuestOptions {
  /** Keep retrying failures that mean "not there yet" for this long (default 0: one attempt). */
  retryMs?: number;
  /** Called before each pause between attempts. */
  onRetry?: (err: Error, attempt: number, waitMs: number) => void;
  /** Limit for one connect and its handshake (default 10 s). */
  connectTimeoutMs?: number;
  signal?: AbortSignal;
}

/** Not yet there: nothing listening, no socket file, the VMM refused the port, the agent went away. */
const TRANSIENT = new Set(["ECONNREFUSED", "ENOENT", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENODEV", "EAGAIN", "ENXIO", "EPIPE", "EHANDSHAKE", "EHELLO", "ECLOSED"]);

export function isTransient(e: unknown): boolean {
  return TRANSIENT.has((e as { code?: string })?.code ?? "");
}

export async function connect(address: string | Address, opts: ConnectOptions = {}): Promise<Guest> {
  const a = toAddress(address);
  opts = withToken(opts);
  const name = opts.name ?? `guest ${formatAddress(a)}`;
  try {
    return await retrying(
      async () => Guest.open(await connectConn(a, { timeoutMs: opts.connectTimeoutMs ?? 10_000, signal: opts.signal }), { ...opts, name }),
      { retryMs: opts.retryMs ?? 0, isTransient, signal: opts.signal, maxPauseMs: 1000, onRetry: (e, wait, attempt) => opts.onRetry?.(e, attempt, wait) },
    );
  } catch (e) {
    if (e instanceof GuestError) throw e;
    // Node's errors carry string codes; an abort is a DOMException whose `code` is a number.
    const { code, name: errName } = e as { code?: unknown; name?: string };
    throw new GuestError(typeof code === "string" ? code : errName === "AbortError" ? "ABORT_ERR" : "ECONNECT", `${name}: ${(e as Error).message}`, { cause: e });
  }
}
