// connect(): dial a listening guest agent and say hello, retrying while it is not there yet.
import { formatAddress, toAddress, type Address } from "./address.ts";
import { GuestError } from "./errors.ts";
import { Guest, type GuestOptions } from "./guest.ts";
import { connectConn } from "./transports/open.ts";

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function connect(address: string | Address, opts: ConnectOptions = {}): Promise<Guest> {
  const a = toAddress(address);
  const name = opts.name ?? `guest ${formatAddress(a)}`;
  const deadline = Date.now() + (opts.retryMs ?? 0);
  let pause = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      const conn = await connectConn(a, { timeoutMs: opts.connectTimeoutMs ?? 10_000, signal: opts.signal });
      return await Guest.open(conn, { ...opts, name });
    } catch (e) {
      const left = deadline - Date.now();
      if (!isTransient(e) || left <= 0) throw e instanceof GuestError ? e : new GuestError((e as { code?: string }).code ?? "ECONNECT", `${name}: ${(e as Error).message}`, { cause: e });
      const wait = Math.min(left, pause);
      opts.onRetry?.(e as Error, attempt, wait);
      await sleep(wait);
      opts.signal?.throwIfAborted();
      pause = Math.min(pause * 2, 1000);
    }
  }
}
