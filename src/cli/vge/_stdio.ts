// Local stdio ⇄ a remote process. Output is written with the local stream's own back-pressure, so a slow
// local reader (`vge run ... | less`) slows the remote process through the credit it holds back.
import type { Writable } from "node:stream";
import type { RemoteProcess } from "../../host/index.ts";

/** Resolves once `data` is handed to the OS, so that process.exit() right after loses nothing. */
export function writeAll(dst: Writable, data: Uint8Array | string): Promise<void> {
  return new Promise<void>((resolve, reject) => dst.write(data, (err) => (err ? reject(err) : resolve())));
}

/** Writes a whole stream, one chunk at a time, each after the previous one was taken. */
export async function pumpOut(src: ReadableStream<Uint8Array>, dst: Writable): Promise<void> {
  for await (const chunk of src as unknown as AsyncIterable<Uint8Array>) await writeAll(dst, chunk);
}

/**
 * Local stdin → the process's stdin, then STDIN_EOF. Ends quietly when the process exits first (its stdin
 * is gone, as with `yes | head -1`); returns a function that stops reading.
 */
export function pumpIn(proc: RemoteProcess): () => void {
  const stdin = proc.stdin;
  if (!stdin) return () => {};
  const local = process.stdin;
  const writer = stdin.getWriter();
  let stopped = false;
  const onData = (chunk: Buffer) => {
    local.pause();
    writer.write(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)).then(
      () => !stopped && local.resume(),
      () => stop(),
    );
  };
  const onEnd = () => {
    writer.close().catch(() => {});
    stop();
  };
  const stop = () => {
    if (stopped) return;
    stopped = true;
    local.off("data", onData);
    local.off("end", onEnd);
    local.pause();
    // Nothing more to read for: let the event loop end without waiting for the terminal or pipe.
    (local as { unref?: () => void }).unref?.();
  };
  local.on("data", onData);
  local.once("end", onEnd);
  local.resume();
  return stop;
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
