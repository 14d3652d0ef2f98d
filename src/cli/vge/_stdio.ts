// Local stdio ⇄ a remote process. Output is written with the local stream's own back-pressure, so a slow
// local reader (`vge run ... | less`) slows the remote process through the credit it holds back.
import type { Writable } from "node:stream";
import type { RemoteProcess } from "../../host/index.ts";
import { describeError, type Log } from "./_log.ts";
import { LocalReadError, pumpChunks } from "./_pump.ts";
import { stdinStream } from "./_stdin.ts";

/** Resolves once `data` is handed to the OS, so that process.exit() right after loses nothing. */
export function writeAll(dst: Writable, data: Uint8Array | string): Promise<void> {
  return new Promise<void>((resolve, reject) => dst.write(data, (err) => (err ? reject(err) : resolve())));
}

/** Writes a whole stream, one chunk at a time, each after the previous one was taken. */
export async function pumpOut(src: ReadableStream<Uint8Array>, dst: Writable): Promise<void> {
  for await (const chunk of src as unknown as AsyncIterable<Uint8Array>) await writeAll(dst, chunk);
}

export interface StdinPump {
  /** Stops reading (a read under way is left to finish). */
  stop(): void;
  /** True once local stdin failed to read: the command got a short input, and vge says so and exits 255. */
  readonly failed: boolean;
}

/**
 * Local stdin → the process's stdin, then STDIN_EOF. One chunk in flight: the next read waits until the
 * last was granted credit. Ends quietly when the process exits first (its stdin is gone, as with
 * `yes | head -1`); a stdin that cannot be read is one error line, and the process's stdin is closed.
 */
export function pumpIn(proc: RemoteProcess, log: Log): StdinPump {
  const pump = { failed: false, stop: () => {} };
  const stdin = proc.stdin;
  if (!stdin) return pump;
  const writer = stdin.getWriter();
  const stop = new AbortController();
  pump.stop = () => stop.abort();
  pumpChunks(stdinStream(), writer, stop.signal).catch((e: unknown) => {
    writer.abort().catch(() => {});
    // Anything else is the process gone (EPIPE) or the connection lost: the result says what matters.
    if (!(e instanceof LocalReadError)) return;
    pump.failed = true;
    log.error(`stdin: ${describeError(e.cause, log.verbose)}; the command's stdin was closed there`);
  });
  return pump;
}

/** Forwards Ctrl-C and termination to the remote process group; a second one gives up on it. */
export function forwardSignals(proc: RemoteProcess, onGiveUp: (sig: NodeJS.Signals) => void): () => void {
  const seen = new Set<string>();
  const handler = (sig: NodeJS.Signals) => {
    if (seen.has(sig)) return onGiveUp(sig);
    seen.add(sig);
    proc.kill(sig);
  };
  const sigs: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of sigs) process.on(s, handler);
  return () => {
    for (const s of sigs) process.off(s, handler);
  };
}
