// The poll(2) thread behind fdwatch.ts. It blocks in poll over the fds the main thread asked about plus its
// control pipe, and posts back each fd that became ready (with the wait it was asked for); a posted fd is forgotten (one-shot), so a reader
// that is not reading is not woken again. Requests arrive as 12-byte records on the control pipe (atomic,
// being under PIPE_BUF): see _fdwatch-records.ts. The loop never returns to this thread's event loop;
// postMessage needs none.
import { POLLIN, poll, read } from "./socket.ts";
import { OP_ADD, OP_QUIT, OP_REMOVE, RECORD_SIZE } from "./_fdwatch-records.ts";

declare const self: Worker & { close(): void };

interface Watch {
  fd: number;
  events: number;
  wait: number;
}

function run(control: number): void {
  const watched: Watch[] = [];
  const records = new Uint8Array(RECORD_SIZE * 512);
  const view = new DataView(records.buffer);
  for (;;) {
    const revents = poll([{ fd: control, events: POLLIN }, ...watched], -1);
    if (revents[0]) {
      const n = read(control, records) ?? 0;
      // EOF: the main thread closed its end (it is going away); nothing more will be asked.
      if (n === 0) return;
      for (let off = 0; off + RECORD_SIZE <= n; off += RECORD_SIZE) {
        const fd = view.getInt32(off, true);
        const events = view.getInt16(off + 4, true);
        const op = view.getInt16(off + 6, true);
        const wait = view.getUint32(off + 8, true);
        if (op === OP_QUIT) return;
        // A request may meet a watch that a record earlier in this batch removed; both orders are kept.
        const at = watched.findIndex((w) => w.fd === fd && w.events === events);
        if (op === OP_ADD && at < 0) watched.push({ fd, events, wait });
        if (op === OP_REMOVE && at >= 0 && watched[at]!.wait === wait) watched.splice(at, 1);
      }
      // The watch list changed: poll again before reporting, so that a removed fd is not reported.
      continue;
    }
    const ready: number[] = [];
    for (let i = watched.length - 1; i >= 0; i--) {
      const rev = revents[i + 1]!;
      if (!rev) continue;
      ready.push(watched[i]!.fd, watched[i]!.events, rev, watched[i]!.wait);
      watched.splice(i, 1);
    }
    if (ready.length) postMessage(ready);
  }
}

self.onmessage = (e: MessageEvent<{ control: number }>) => {
  try {
    run(e.data.control);
  } catch (err) {
    // poll or read failed (EINVAL: more fds than RLIMIT_NOFILE allows): the main thread fails every
    // waiter and starts a new thread on the next wait.
    postMessage({ error: String((err as Error).message ?? err) });
  }
  // Ends this thread only (process.exit here could end the whole agent).
  self.close();
};
