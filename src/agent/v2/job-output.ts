// A detached execution's output (PROTOCOL.md §5.1): every byte goes into its stream's Ring first; whichever
// connection is attached is sent from the ring within its own window. While one is attached the process
// is read only when that host has been sent everything and has credit (the same back-pressure as an
// ordinary execution); while none is, the pipes are read at once into the rings, so the process never
// blocks and the oldest bytes beyond `keep` are dropped and counted. The EXIT goes to whoever is attached
// once they have been sent all output; one attacher at a time, a new ATTACH takes the job over.
// STDIN credit belongs to the job, not to a follower: one window for all of them together, so what is queued
// for a process that does not read its stdin stays within one window however many hosts attach in turn.
import { CHUNK, DEFAULT_WINDOW, T, encodeHeader, encodeJson, encodeWindow } from "../../protocol/v2/frame.ts";
import { Credit, creditBack } from "../../protocol/v2/credit.ts";
import type { Attached, ReplayStart } from "../../protocol/v2/jobs.ts";
import type { ExitResult } from "../../protocol/v2/messages.ts";
import { stdinOverrun, type Output, type Send } from "./output.ts";
import { Ring } from "./ring.ts";

/** A connection following a job under one of its ids. */
export interface Attachment {
  id: number;
  send: Send;
  /** The session forgets the id (after the EXIT, or when another connection took the job over). */
  release: () => void;
}

interface Follower extends Attachment {
  credit: Credit;
  /** Next offset to send, per stream type. */
  cursor: Map<number, number>;
}

const STREAMS = [T.STDOUT, T.STDERR] as const;

export class JobOutput implements Output {
  readonly rings: Map<number, Ring>;
  pid: number | null = null;
  result: ExitResult | undefined;
  private att: Follower | undefined;
  /**
   * STDIN bytes the job may still accept: the window less what followers sent and the process has not taken
   * yet. The follower attached is told this much in ATTACHED and is given back every byte taken, whoever
   * sent it, so its credit and this count stay equal.
   */
  private stdinFree = DEFAULT_WINDOW;
  private closed = false;
  private waiters: (() => void)[] = [];
  // write() copies into the ring at once.
  readonly copiesChunks = true;

  constructor(
    readonly job: number,
    readonly tag: string | null,
    readonly keep: number,
    first: Attachment,
  ) {
    this.rings = new Map(STREAMS.map((t) => [t, new Ring(keep)]));
    this.follow(first, { stdout: 0, stderr: 0 });
  }

  get attached(): boolean {
    return this.att !== undefined;
  }

  // --- Output, for the Execution ---

  async ready(type: number): Promise<boolean> {
    for (;;) {
      if (this.closed) return false;
      if (this.room(type) > 0) return true;
      await this.changed();
    }
  }

  room(type: number): number {
    const a = this.att;
    if (!a) return CHUNK;
    return a.cursor.get(type)! >= this.rings.get(type)!.total ? a.credit.available : 0;
  }

  async write(type: number, chunk: Uint8Array): Promise<boolean> {
    // Copied into the ring: the chunk itself dies young, which the collector frees without a full collection.
    this.rings.get(type)!.push(chunk, this.att?.cursor.get(type) ?? Infinity);
    this.notify();
    return !this.closed;
  }

  started(pid: number): void {
    this.pid = pid;
    const a = this.att;
    if (a) void a.send(encodeJson(T.STARTED, a.id, { pid, job: this.job, ...(this.tag ? { tag: this.tag } : {}) })).catch(() => {});
  }

  end(result: ExitResult): void {
    this.result = result;
    this.notify();
  }

  onWindow(n: number): void {
    if (this.att) creditBack(this.att.credit, n, `job ${this.job}`);
    this.notify();
  }

  spendStdin(n: number): void {
    if (n > this.stdinFree) throw stdinOverrun(n, this.stdinFree);
    this.stdinFree -= n;
  }

  stdinTaken(n: number): void {
    this.stdinFree += n;
    // To whoever follows the job now: the bytes may have come from a connection that has gone since.
    const a = this.att;
    if (a) void a.send(encodeWindow(a.id, n)).catch(() => {});
  }

  leave(send: Send): boolean {
    if (this.att?.send === send) this.unfollow();
    return true;
  }

  close(): void {
    this.closed = true;
    this.unfollow();
  }

  // --- attaching ---

  /** Where a replay from `from` would start, or an error when `from` lies beyond what was written. */
  replayStart(from: { stdout: number; stderr: number }): { stdout: ReplayStart; stderr: ReplayStart } | string {
    const at = (ring: Ring, f: number): ReplayStart | string =>
      f > ring.total ? `offset ${f} is beyond the ${ring.total} bytes written` : { from: Math.max(f, ring.start), dropped: Math.max(0, ring.start - f) };
    const stdout = at(this.rings.get(T.STDOUT)!, from.stdout);
    const stderr = at(this.rings.get(T.STDERR)!, from.stderr);
    if (typeof stdout === "string") return `stdout: ${stdout}`;
    if (typeof stderr === "string") return `stderr: ${stderr}`;
    return { stdout, stderr };
  }

  /**
   * `a` follows the job from now on: ATTACHED, the replay, live output, the EXIT. A connection already
   * attached gets DETACHED EBUSY and its id is released (one attacher at a time; the newest wins, because
   * the likeliest reason for a second ATTACH is a host that restarted before the agent saw it go).
   */
  attach(a: Attachment, from: { stdout: number; stderr: number }): Attached | string {
    const start = this.replayStart(from);
    if (typeof start === "string") return start;
    const old = this.att;
    if (old) {
      // Not trimmed yet: bytes held back for the old follower may be what the new one asked to be replayed.
      this.unfollow(false);
      void old.send(encodeJson(T.DETACHED, old.id, { errno: "EBUSY", message: `job ${this.job} was attached by another connection` })).catch(() => {});
      old.release();
    }
    const body: Attached = { job: this.job, tag: this.tag, pid: this.pid, state: this.result ? "exited" : "running", ...start, stdin: this.stdinFree };
    void a.send(encodeJson(T.ATTACHED, a.id, body)).catch(() => {});
    this.follow(a, { stdout: start.stdout.from, stderr: start.stderr.from });
    return body;
  }

  private follow(a: Attachment, from: { stdout: number; stderr: number }): void {
    const f: Follower = { ...a, credit: new Credit(DEFAULT_WINDOW, DEFAULT_WINDOW), cursor: new Map([[T.STDOUT, from.stdout], [T.STDERR, from.stderr]]) };
    this.att = f;
    // Back to `keep`, except what this follower is still to be sent.
    for (const [type, ring] of this.rings) ring.trim(f.cursor.get(type));
    this.notify();
    void this.sendLoop(f);
  }

  private unfollow(trim = true): void {
    const a = this.att;
    if (!a) return;
    this.att = undefined;
    a.credit.fail(new Error("detached"));
    // Nobody to hold bytes back for: the rings go back to their bound.
    if (trim) for (const r of this.rings.values()) r.trim();
    this.notify();
  }

  /** Sends `a` what the rings hold beyond its cursors, within its credit, then the EXIT once all is sent. */
  private async sendLoop(a: Follower): Promise<void> {
    // Never synchronously: the session registers the id before anything can release it.
    await Promise.resolve();
    try {
      while (this.att === a) {
        let pending = false;
        for (const type of STREAMS) {
          const ring = this.rings.get(type)!;
          const at = a.cursor.get(type)!;
          if (at >= ring.total) continue;
          pending = true;
          const n = await a.credit.take(Math.min(CHUNK, ring.total - at));
          if (this.att !== a) return;
          const bytes = ring.read(Math.max(at, ring.start), n);
          if (bytes.byteLength < n) a.credit.add(n - bytes.byteLength);
          a.send(encodeHeader(type, a.id, bytes.byteLength)).catch(() => {});
          await a.send(bytes);
          // Taken over (or gone) while the bytes were on their way: the ring is the next follower's to trim.
          if (this.att !== a) return;
          a.cursor.set(type, Math.max(at, ring.start) + bytes.byteLength);
          ring.trim(a.cursor.get(type));
          this.notify();
        }
        if (pending) continue;
        if (this.result) {
          // `a` is done before its EXIT is on its way: a takeover meanwhile must not send it a DETACHED too.
          this.unfollow();
          await a.send(encodeJson(T.EXIT, a.id, this.result));
          a.release();
          return;
        }
        await this.changed();
      }
    } catch {
      // The connection failed (a write rejected) or its credit was failed by unfollow(): the session's
      // close path detaches it; the job goes on.
    }
  }

  private changed(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
