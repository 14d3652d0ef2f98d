// Getting hold of a guest for one command: listen addresses wait for a guest to dial in (saying so once,
// then how long every 5 s), connect addresses dial, retrying for --wait. The listener is closed (and its
// socket file removed) as soon as one guest is in, and also on Ctrl-C while waiting.
import { UsageError } from "../../common/argv.ts";
import { retrying } from "../../transport/retry.ts";
import { GuestError, connect, formatAddress, isListenAddress, listen, listenRaw, connectRaw, isTransient, readTokenFile, type Address, type Conn, type Guest } from "../../host/index.ts";
import type { Log } from "./_log.ts";

const NOTICE_EVERY_MS = 5000;

export interface OpenOptions {
  /** Undefined: listen addresses wait without limit, connect addresses try once. */
  waitMs?: number;
  log: Log;
  /** --token-file: read once, here; every attempt authenticates with what it held then. */
  tokenFile?: string;
}

function notices(log: Log, what: string): { start(reason?: string): void; stop(): void } {
  let timer: ReturnType<typeof setInterval> | undefined;
  const t0 = Date.now();
  return {
    start(reason) {
      if (timer || log.quiet) return;
      log.info(`waiting for ${what}${reason ? ` (${reason})` : ""}`);
      timer = setInterval(() => log.info(`still waiting for ${what} (${Math.round((Date.now() - t0) / 1000)} s)`), NOTICE_EVERY_MS);
    },
    stop: () => clearInterval(timer),
  };
}

function timeoutError(a: Address, ms: number, what: string): GuestError {
  return new GuestError("ETIMEDOUT", `${what} at ${formatAddress(a)} within ${ms / 1000} s`);
}

/** Resolves with the first item a listener yields, within `waitMs`; the listener is closed either way. */
async function firstOf<T>(a: Address, accept: () => Promise<T>, close: () => Promise<void>, o: OpenOptions, what: string): Promise<T> {
  const n = notices(o.log, `${what} to connect to ${formatAddress(a)}`);
  const interrupted = (sig: NodeJS.Signals) => void close().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    n.start();
    const limit = new Promise<never>((_, reject) => {
      if (o.waitMs !== undefined) timer = setTimeout(() => reject(timeoutError(a, o.waitMs!, `no ${what.replace(/^an? /, "")} connected`)), o.waitMs);
    });
    return await Promise.race([accept(), limit]);
  } finally {
    n.stop();
    clearTimeout(timer);
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
    await close();
  }
}

/**
 * --token-file, read before anything is dialed or bound: a file that cannot serve (missing, unreadable,
 * empty, too short) is the operator's configuration, so it is a usage error (exit 2), not vge failing.
 */
function tokenOf(path: string | undefined): Uint8Array | undefined {
  if (path === undefined) return undefined;
  try {
    return readTokenFile(path);
  } catch (e) {
    if (e instanceof GuestError && e.code === "EINVAL") throw new UsageError(e.message);
    throw e;
  }
}

export async function openGuest(a: Address, o: OpenOptions): Promise<Guest> {
  const token = tokenOf(o.tokenFile);
  if (isListenAddress(a)) {
    const l = await listen(a, { token, onError: (e, peer) => o.log.warn(`${peer}: ${e.message}`) });
    return firstOf(a, () => l.accept(), () => l.close(), o, "a guest");
  }
  const n = notices(o.log, `the agent at ${formatAddress(a)}`);
  try {
    return await connect(a, { token, retryMs: o.waitMs ?? 0, onRetry: (e) => n.start(e.message) });
  } catch (e) {
    if (o.waitMs && isTransient(e)) throw new GuestError("ETIMEDOUT", `${timeoutError(a, o.waitMs, "no agent answering").message}; last: ${(e as Error).message}`, { cause: e });
    throw e;
  } finally {
    n.stop();
  }
}

/** A connected stream without any hello, for agents in the original formats. */
export async function openRaw(a: Address, o: OpenOptions): Promise<Conn> {
  if (isListenAddress(a)) {
    const l = await listenRaw(a);
    return (await firstOf(a, () => l.accept(), () => l.close(), o, "an agent")).conn;
  }
  const n = notices(o.log, `the agent at ${formatAddress(a)}`);
  try {
    return await retrying(() => connectRaw(a), { retryMs: o.waitMs ?? 0, isTransient, firstPauseMs: 200, maxPauseMs: 200, onRetry: (e) => n.start(e.message) });
  } catch (e) {
    throw new GuestError((e as { code?: string }).code ?? "ECONNECT", `${formatAddress(a)}: ${(e as Error).message}`, { cause: e });
  } finally {
    n.stop();
  }
}
