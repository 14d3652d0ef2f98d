// Readiness of any fd (pipe, terminal, socket) without reading it and without polling on a timer. Bun's own
// readers read whatever is there as soon as it is there; a reader that must read only as far as a consumer
// allows (a pipe under the host's credit) needs to be told "readable" and then read itself. One thread,
// started on first use (~2 ms, ~4 MiB), blocks in poll(2) for every fd waited on and posts back the ready
// ones: the wake-up is as prompt as the event loop's own, and an idle fd costs nothing.
import { OP_ADD, OP_REMOVE, encodeRecord } from "./_fdwatch-records.ts";
import { pipe } from "./pipe.ts";
import { close, write } from "./socket.ts";
import { waitFd } from "./vsock.ts";

interface Waiter {
  /** Which wait this is (see _fdwatch-records.ts): a report for an earlier wait on the same fd is not ours. */
  id: number;
  resolve: (revents: number) => void;
  reject: (err: Error) => void;
  /** The same wait done by timer polling: what a waiter falls back to if the thread fails. */
  poll: () => Promise<number>;
}

class Watcher {
  private readonly waiters = new Map<string, Waiter>();
  private readonly worker: Worker;
  private readonly control: { read: number; write: number };
  private dead = false;
  private lastId = 0;

  constructor(private readonly onDead: () => void) {
    this.control = pipe();
    this.worker = new Worker(threadUrl(), { smol: true } as WorkerOptions);
    // Like a pending read, a pending wait keeps the process alive; an idle thread does not (see track()).
    this.worker.unref();
    this.worker.onmessage = (e: MessageEvent<number[] | { error: string }>) => this.onReady(e.data);
    this.worker.onerror = (e: ErrorEvent) => this.fail(new Error(`fd watcher: ${e.message}`));
    this.worker.postMessage({ control: this.control.read });
  }

  wait(fd: number, events: number, signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error("aborted"));
    const key = `${fd}:${events}`;
    if (this.waiters.has(key)) return Promise.reject(new Error(`fd watcher: fd ${fd} is waited on twice`));
    const id = (this.lastId = (this.lastId + 1) >>> 0);
    return new Promise<number>((resolve, reject) => {
      const onAbort = () => {
        if (this.waiters.get(key) !== waiter) return;
        this.track(() => this.waiters.delete(key));
        this.send(fd, events, OP_REMOVE, id);
        reject(signal!.reason ?? new Error("aborted"));
      };
      const waiter: Waiter = {
        id,
        poll: () => waitFd(fd, events, { signal }),
        resolve: (rev) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(rev);
        },
        reject: (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      this.track(() => this.waiters.set(key, waiter));
      signal?.addEventListener("abort", onAbort, { once: true });
      this.send(fd, events, OP_ADD, id);
    });
  }

  /** Runs `change` on the waiters; the thread holds the process open exactly while someone waits. */
  private track(change: () => void): void {
    const before = this.waiters.size;
    change();
    const after = this.waiters.size;
    if (before === 0 && after > 0) this.worker.ref();
    if (before > 0 && after === 0) this.worker.unref();
  }

  private send(fd: number, events: number, op: number, id: number): void {
    if (this.dead) return;
    try {
      // A blocking write of one atomic record: the thread drains the pipe at once, so this never waits long.
      write(this.control.write, encodeRecord(fd, events, op, id));
    } catch (e) {
      this.fail(e as Error);
    }
  }

  private onReady(data: number[] | { error: string }): void {
    if (!Array.isArray(data)) return this.fail(new Error(`fd watcher: ${data.error}`));
    for (let i = 0; i + 3 < data.length; i += 4) {
      const key = `${data[i]}:${data[i + 1]}`;
      const w = this.waiters.get(key);
      // No waiter, or another one: the wait reported was aborted after the thread had seen the fd ready (and
      // the number may since name another file); nothing to do.
      if (!w || w.id !== data[i + 3]) continue;
      this.track(() => this.waiters.delete(key));
      w.resolve(data[i + 2]!);
    }
  }

  private fail(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    failureHandler?.(err);
    this.onDead();
    // Nobody is left hanging, and nobody loses output over it: each waiter goes on by timer polling (the
    // old way, slower to wake and never idle). A later fdReady starts a new thread.
    for (const w of this.waiters.values()) w.poll().then(w.resolve, w.reject);
    this.waiters.clear();
    this.worker.unref();
    void this.worker.terminate();
    close(this.control.write);
    close(this.control.read);
  }
}

/**
 * Where the thread's module is. In a compiled agent it is a second entry point (build.ts), stored under
 * /$bunfs/root/ by its path below build.ts's `root` (src/); from source it sits next to this file.
 */
function threadUrl(): string {
  if (import.meta.url.startsWith("file:///$bunfs/")) return "/$bunfs/root/sys/_fdwatch-thread.ts";
  return new URL("./_fdwatch-thread.ts", import.meta.url).href;
}

let watcher: Watcher | undefined;
let failureHandler: ((err: Error) => void) | undefined;

/** Called when the poll thread fails (its waiters go on by polling; the next wait starts a new thread): for the program's log. */
export function onFdWatchFailure(handler: (err: Error) => void): void {
  failureHandler = handler;
}

/**
 * Resolves with poll(2)'s revents once `fd` is ready for `events` (POLLIN, POLLOUT; POLLHUP, POLLERR and
 * POLLNVAL are reported whatever was asked). Rejects when `signal` aborts. One waiter per fd and events at a
 * time. Abort the wait before closing the fd: a number closed while watched may be reused by another file.
 */
export function fdReady(fd: number, events: number, signal?: AbortSignal): Promise<number> {
  return running().wait(fd, events, signal);
}

/**
 * Starts the poll thread now if it is not running. A program that will wait soon calls this at a moment
 * of its choosing (the agent: its first execution), so that the thread's fds exist from then on and not
 * from whichever read first finds its pipe empty.
 */
export function startFdWatch(): void {
  running();
}

function running(): Watcher {
  watcher ??= new Watcher(() => (watcher = undefined));
  return watcher;
}
