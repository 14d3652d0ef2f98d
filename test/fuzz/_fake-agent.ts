// A fuzzed guest: a fake agent on a Unix socket that speaks the v2 hello correctly (mostly) and then
// answers every request the host library makes with a stateful script per request (STARTED, output within
// or past the credit, EXIT; ATTACHED or DETACHED; LISTING pages; RESULT after FILE_END or DIR_END; a GETDIR
// tree with hostile entries; TCP_OPENED, data, TCP_CLOSED...), each step now and then replaced by one that
// breaks the protocol, and the connection ended one of several ways. It also holds the host to the
// protocol: every frame the host sends must decode and stay within the credit this agent gave.
// The case number comes from the host's HELLO (client "vge-fuzz-case-N"), so each case reproduces alone.
import { createServer, type Server, type Socket } from "node:net";
import { DEFAULT_WINDOW, MAGIC, MAX_PAYLOAD, T, encodeFrame, encodeJson, typeName, type Frame } from "../../src/protocol/v2/frame.ts";
import { FrameDecoder } from "../../src/protocol/v2/decoder.ts";
import { caseSeed, prng, type Rng } from "./_rng.ts";

/** How the agent ends a case's connection. */
export type Ending = "complete" | "close" | "cut" | "error" | "silent" | "junk";

/** What the fake agent did in one case, and what the host did wrong, for the judge (guest-fuzz.test.ts). */
export interface AgentCase {
  n: number;
  ending: Ending;
  welcome: string;
  /** Request ids and their kind, as the host opened them. */
  requests: Map<number, string>;
  /** Requests whose script sent its last frame (EXIT, RESULT, DETACHED, LISTING more:false, PONG, TCP_CLOSED), well-formed or not. */
  terminated: Set<number>;
  /** Milliseconds from the HELLO to the last of those frames: the judge expects settling only well before the host's deadline. */
  lastEndMs: number;
  /** Requests whose script broke the protocol on purpose (the host may fail the whole connection). */
  broken: boolean;
  notes: string[];
  /** The host broke the protocol: an undecodable frame, data past the credit given, a frame before HELLO. */
  hostViolations: string[];
}

const CLIENT = /^vge-fuzz-case-(\d+)$/;
const enc = new TextEncoder();
const u32 = (n: number) => {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, n >>> 0, true);
  return p;
};
const WELCOME = { version: 2, agent: "fuzzed", capabilities: ["exec", "pty", "signal", "timeout", "files", "ping", "flow", "dirs", "detach", "tcp"], hostname: "fz", kernel: "0", arch: "x64", initrd: false, pid: 1, maxPayload: MAX_PAYLOAD };
/** Terminal escapes and overlong text: the host must bound and escape what it keeps. */
const EVIL = "\x1b]0;pwned\x07\x1b[2J\u009b1;1H\u202e";

export interface FakeAgent {
  server: Server;
  stop(): void;
}

export async function fakeAgent(path: string, seed: number, onCase: (c: AgentCase) => void): Promise<FakeAgent> {
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on("error", () => {});
    const conn = new Connection(sock, seed, onCase);
    sock.on("data", (d: Buffer) => conn.data(new Uint8Array(d)));
    sock.on("close", () => {
      sockets.delete(sock);
      conn.closed();
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    server,
    stop() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

interface Req {
  id: number;
  kind: string;
  /** Bytes the host may still send us on this id (we grant, it spends). */
  hostCredit: number;
  /** Bytes we may still send on this id (the host grants with WINDOW). */
  outCredit: number;
  received: number;
  /** FILE_END / DIR_END / TCP_EOF / STDIN_EOF came. */
  ended: boolean;
  wake?: () => void;
  payload?: Uint8Array;
  entries: number;
}

class Connection {
  private head = new Uint8Array(0);
  private magicSeen = false;
  private dec = new FrameDecoder();
  private c: AgentCase | undefined;
  private rng!: Rng;
  private reqs = new Map<number, Req>();
  private window = DEFAULT_WINDOW;
  private gone = false;
  private reported = false;
  private pending = 0;
  private endTimer: ReturnType<typeof setTimeout> | undefined;
  private helloAt = 0;

  constructor(
    private readonly sock: Socket,
    private readonly seed: number,
    private readonly onCase: (c: AgentCase) => void,
  ) {}

  data(d: Uint8Array): void {
    if (!this.magicSeen) {
      const h = new Uint8Array(this.head.byteLength + d.byteLength);
      h.set(this.head);
      h.set(d, this.head.byteLength);
      if (h.byteLength < MAGIC.byteLength) return void (this.head = h);
      if (!MAGIC.every((b, i) => h[i] === b)) return this.violation("the connection does not start with the v2 magic");
      this.magicSeen = true;
      d = h.subarray(MAGIC.byteLength);
    }
    try {
      for (const f of this.dec.frames(d)) this.frame(f);
    } catch (e) {
      this.violation(`the host sent an undecodable frame: ${(e as Error).message}`);
      this.sock.destroy();
    }
  }

  closed(): void {
    this.gone = true;
    for (const r of this.reqs.values()) r.wake?.();
    this.report();
  }

  private report(): void {
    if (this.reported || !this.c) return;
    this.reported = true;
    clearTimeout(this.endTimer);
    this.onCase(this.c);
  }

  /** Violations before the HELLO named the case: they go into it once it does. */
  private pre: string[] = [];

  private violation(msg: string): void {
    if (this.c) this.c.hostViolations.push(msg);
    else this.pre.push(msg);
  }

  private write(b: Uint8Array): void {
    if (!this.gone && !this.sock.destroyed) this.sock.write(b);
  }
  private json(type: number, id: number, body: unknown): void {
    this.write(encodeJson(type, id, body));
  }
  private note(s: string): void {
    if (this.c && this.c.notes.length < 60) this.c.notes.push(s);
  }

  private frame(f: Frame): void {
    if (!this.c) {
      if (f.type !== T.HELLO) return this.violation(`${typeName(f.type)} before HELLO`);
      return this.hello(f);
    }
    if (f.type === T.HELLO) return this.violation("a second HELLO");
    const r = this.reqs.get(f.id);
    switch (f.type) {
      case T.EXEC:
      case T.ATTACH:
      case T.PUT:
      case T.GET:
      case T.PUTDIR:
      case T.GETDIR:
      case T.TCP_OPEN:
      case T.LIST:
      case T.KILL:
      case T.PING: {
        if (f.id === 0) return this.violation(`${typeName(f.type)} on id 0`);
        if (r && !this.c.terminated.has(f.id)) return this.violation(`${typeName(f.type)} on id ${f.id}, which is still open`);
        const kind = typeName(f.type);
        const req: Req = { id: f.id, kind, hostCredit: this.window, outCredit: f.type === T.GETDIR || f.type === T.TCP_OPEN ? this.window : DEFAULT_WINDOW, received: 0, ended: false, payload: f.payload, entries: 0 };
        this.reqs.set(f.id, req);
        this.c.requests.set(f.id, kind);
        this.c.terminated.delete(f.id);
        this.pending++;
        void this.script(req).finally(() => {
          this.pending--;
          this.maybeEnd();
        });
        return;
      }
      case T.STDIN:
      case T.FILE_DATA:
      case T.TCP_DATA:
      case T.DIR_ENTRY: {
        if (!r) return; // a request we finished: the host may still have had data in flight
        if (f.payload.byteLength > r.hostCredit) this.violation(`${typeName(f.type)} of ${f.payload.byteLength} bytes on ${r.kind} ${f.id}, past the ${r.hostCredit} bytes of credit left`);
        r.hostCredit -= f.payload.byteLength;
        r.received += f.payload.byteLength;
        if (f.type === T.DIR_ENTRY) r.entries++;
        this.giveBack(r, f.payload.byteLength);
        return;
      }
      case T.FILE_END:
      case T.DIR_END:
      case T.TCP_EOF:
      case T.STDIN_EOF:
        if (r) {
          r.ended = true;
          r.wake?.();
        }
        return;
      case T.WINDOW:
        if (r) {
          if (f.payload.byteLength !== 4) return this.violation(`WINDOW of ${f.payload.byteLength} bytes`);
          r.outCredit += new DataView(f.payload.buffer, f.payload.byteOffset, 4).getUint32(0, true);
          r.wake?.();
        }
        return;
      case T.SIGNAL:
      case T.RESIZE:
      case T.TCP_RESET:
      case T.AUTH:
        return;
      default:
        return this.violation(`the host sent ${typeName(f.type)}, a frame only agents send`);
    }
  }

  /** Credit back for what the host sent: exactly, mostly; sometimes never, late, or far too much. */
  private giveBack(r: Req, n: number): void {
    if (n === 0) return;
    const x = this.rng.next();
    if (x < 0.03) {
      this.c!.broken = true;
      this.note(`WINDOW 0xffffffff to ${r.kind} ${r.id}`);
      return this.write(encodeFrame(T.WINDOW, r.id, u32(0xffffffff)));
    }
    if (x < 0.06 && this.c!.ending !== "complete") return; // credit withheld: the host must wait, not spin or grow
    r.hostCredit += n;
    this.write(encodeFrame(T.WINDOW, r.id, u32(n)));
  }

  private hello(f: Frame): void {
    let client = "";
    try {
      client = String(JSON.parse(new TextDecoder().decode(f.payload)).client ?? "");
    } catch {
      // judged below
    }
    const m = CLIENT.exec(client);
    const n = m ? Number(m[1]) : -1;
    this.rng = prng((caseSeed(this.seed, n) ^ 0xa9e47c3d) >>> 0);
    const rng = this.rng;
    const endings: [Ending, number][] = [
      ["complete", 0.62],
      ["close", 0.12],
      ["cut", 0.05],
      ["error", 0.05],
      ["silent", 0.04],
      ["junk", 0.12],
    ];
    let at = rng.next();
    let ending: Ending = "complete";
    for (const [e, w] of endings) if ((at -= w) < 0) {
      ending = e;
      break;
    }
    this.helloAt = performance.now();
    this.c = { n, ending, welcome: "ok", requests: new Map(), terminated: new Set(), lastEndMs: 0, broken: false, notes: [], hostViolations: [...this.pre] };
    if (!m) this.violation(`HELLO client ${JSON.stringify(client)} names no case`);
    this.window = rng.pick([DEFAULT_WINDOW, DEFAULT_WINDOW, 65536, 16384]);
    if (rng.chance(0.08)) {
      // A WELCOME the host must refuse (or a slow one): each ends the case at the hello.
      const bad: [string, () => void][] = [
        ["version 3", () => this.json(T.WELCOME, 0, { ...WELCOME, window: this.window, version: 3 })],
        ["window 0", () => this.json(T.WELCOME, 0, { ...WELCOME, window: 0 })],
        ["window 2^40", () => this.json(T.WELCOME, 0, { ...WELCOME, window: 2 ** 40 })],
        ["5000 capabilities", () => this.json(T.WELCOME, 0, { ...WELCOME, window: this.window, capabilities: Array.from({ length: 5000 }, (_, i) => `c${i}`) })],
        ["evil hostname", () => this.json(T.WELCOME, 0, { ...WELCOME, window: this.window, hostname: EVIL.repeat(1000) })],
        ["not JSON", () => this.write(encodeFrame(T.WELCOME, 0, enc.encode("{\"version\":2,")))],
        ["auth asked", () => this.json(T.WELCOME, 0, { ...WELCOME, window: this.window, auth: { nonce: "00".repeat(32) } })],
        ["ERROR", () => this.json(T.ERROR, 0, { code: "EVERSION", message: EVIL })],
        ["WELCOME on id 7", () => this.json(T.WELCOME, 7, { ...WELCOME, window: this.window })],
        ["close", () => this.sock.end()],
        ["silence", () => {}],
        ["length 2^32-1", () => this.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, T.WELCOME, 0, 0, 0, 0]))],
      ];
      const [name, act] = rng.pick(bad);
      this.c.welcome = name;
      this.c.broken = true;
      act();
      this.armEnd();
      return;
    }
    this.json(T.WELCOME, 0, { ...WELCOME, window: this.window });
    if (ending === "junk") void this.junk();
    this.armEnd();
  }

  /** However the case ends, the fake agent reports it within a bound (the host closes after its deadline). */
  private armEnd(): void {
    this.endTimer = setTimeout(() => this.sock.destroy(), 20_000);
  }

  private maybeEnd(): void {
    const c = this.c!;
    if (this.pending > 0 || this.gone) return;
    if (c.ending === "close") setTimeout(() => this.sock.end(), this.rng.int(0, 20));
    else if (c.ending === "cut") {
      this.write(encodeFrame(T.STDOUT, this.rng.pick([...c.requests.keys(), 1]), new Uint8Array(100)).subarray(0, this.rng.int(1, 50)));
      this.sock.end();
    } else if (c.ending === "error") this.json(T.ERROR, 0, { code: this.rng.pick(["EPROTO", "E\u0000", 7]), message: EVIL.repeat(this.rng.int(1, 3000)) });
  }

  /** Unsolicited frames now and then: for ids never opened, id 0, open ids with the wrong type, garbage. */
  private async junk(): Promise<void> {
    const rng = this.rng;
    for (let i = rng.int(1, 12); i > 0 && !this.gone; i--) {
      await Bun.sleep(rng.int(0, 15));
      const ids = [0, 0xffffffff, 12345, ...this.reqs.keys()];
      const id = rng.pick(ids);
      const r = rng.next();
      if (r < 0.5) {
        const type = rng.chance(0.8) ? rng.pick(Object.values(T)) : rng.int(0, 255);
        const payload = rng.chance(0.5) ? enc.encode(JSON.stringify(rng.pick([{}, { ok: true }, { status: "exited", code: 0 }, [], "x", { jobs: [], more: false }]))) : new Uint8Array(rng.pick([0, 3, 4, 100]));
        this.note(`junk ${typeName(type)} on ${id}`);
        this.write(encodeFrame(type, id, payload));
      } else if (r < 0.7) {
        this.note(`junk WINDOW on ${id}`);
        this.write(encodeFrame(T.WINDOW, id, u32(rng.pick([0, 1, 0xffffffff]))));
      } else if (r < 0.8) {
        this.note(`junk: oversized length`);
        this.write(new Uint8Array([0x06, 0x00, 0x04, 0x00, T.STDOUT, 1, 0, 0, 0]));
      } else {
        this.note(`junk STDOUT ${rng.pick([1, 300_000])} bytes on ${id}`);
        const n = rng.pick([1, 300_000]);
        this.write(encodeFrame(T.STDOUT, id, new Uint8Array(Math.min(n, MAX_PAYLOAD))));
      }
    }
  }

  /** Waits until `r` can take `n` bytes of output (or `ms` pass, or the host is gone): false when not. */
  private async credit(r: Req, n: number, ms = 600): Promise<boolean> {
    const end = performance.now() + ms;
    while (r.outCredit < n && !this.gone && performance.now() < end) await new Promise<void>((w) => ((r.wake = w), setTimeout(w, 20)));
    return r.outCredit >= n && !this.gone;
  }

  private async waitEnd(r: Req, ms = 600): Promise<boolean> {
    const end = performance.now() + ms;
    while (!r.ended && !this.gone && performance.now() < end) await new Promise<void>((w) => ((r.wake = w), setTimeout(w, 20)));
    return r.ended;
  }

  /** `n` bytes of output on `type` within the credit, or past it (the script chose to break the protocol). */
  private async send(r: Req, type: number, n: number, overrun = false): Promise<void> {
    for (let left = n; left > 0 && !this.gone; ) {
      const take = Math.min(left, 65536);
      if (!overrun && !(await this.credit(r, take))) return;
      r.outCredit -= take;
      this.write(encodeFrame(type, r.id, new Uint8Array(take).fill(0x61)));
      left -= take;
    }
  }

  private async pause(): Promise<void> {
    if (this.rng.chance(0.4)) await Bun.sleep(this.rng.int(0, 10));
  }

  /** Marks `r` done, unless the host has gone (then nothing reached it). */
  private terminate(r: Req): void {
    if (this.gone) return;
    this.c!.terminated.add(r.id);
    this.c!.lastEndMs = performance.now() - this.helloAt;
  }

  /** With chance `p`, do `bad` instead of `good`: the step breaks the protocol (the host must fail the connection cleanly). */
  private either(p: number, what: string, bad: () => void, good: () => void): void {
    if (this.rng.chance(p)) {
      this.c!.broken = true;
      this.note(`bad: ${what}`);
      bad();
    } else good();
  }

  private async script(r: Req): Promise<void> {
    const rng = this.rng;
    const c = this.c!;
    if (c.ending === "silent") return;
    const p = rng.pick([0, 0, 0.05, 0.2]); // how often a step of this request breaks the protocol
    await this.pause();
    switch (r.kind) {
      case "EXEC":
      case "ATTACH": {
        const job = rng.int(1, 50);
        if (r.kind === "EXEC") this.either(p, "STARTED pid 0", () => this.json(T.STARTED, r.id, { pid: 0 }), () => this.json(T.STARTED, r.id, { pid: rng.int(2, 99999), ...(rng.chance(0.3) ? { job, tag: "t1" } : {}) }));
        else if (rng.chance(0.2)) {
          this.json(T.DETACHED, r.id, { errno: rng.pick(["ENOENT", "EBUSY", "ERANGE"]), message: `no job ${EVIL}` });
          return this.terminate(r);
        } else
          this.either(
            p,
            "ATTACHED malformed",
            () => this.json(T.ATTACHED, r.id, { job: -1, tag: "../x", state: "zombie" }),
            () => this.json(T.ATTACHED, r.id, { job, tag: null, pid: rng.pick([null, 1234]), state: rng.pick(["running", "exited"]), stdout: { from: rng.int(0, 1e6), dropped: rng.int(0, 100) }, stderr: { from: 0, dropped: 0 } }),
          );
        await this.pause();
        if (rng.chance(p)) {
          c.broken = true;
          this.note(`bad: a second STARTED/ATTACHED on ${r.id}`);
          this.json(r.kind === "EXEC" ? T.STARTED : T.ATTACHED, r.id, { pid: 5 });
        }
        for (let k = rng.int(0, 4); k > 0; k--) {
          const overrun = rng.chance(p);
          if (overrun) (c.broken = true), this.note(`bad: output past the credit on ${r.id}`);
          await this.send(r, rng.chance(0.7) ? T.STDOUT : T.STDERR, overrun ? DEFAULT_WINDOW + 1 : rng.pick([0, 1, 100, 65536, 200_000]), overrun);
          await this.pause();
        }
        if (rng.chance(0.3)) await this.waitEnd(r); // until the host's STDIN_EOF, as cat would
        this.either(
          p,
          "EXIT malformed",
          () => this.json(T.EXIT, r.id, rng.pick([{ status: "exited", code: 256 }, { status: "?" }, { status: "signaled", signal: EVIL, signo: 9 }, { status: "error", errno: "E", message: 5 }])),
          () =>
            this.json(
              T.EXIT,
              r.id,
              rng.pick([{ status: "exited", code: rng.int(0, 255) }, { status: "signaled", signal: "SIGKILL", signo: 9 }, { status: "timeout", signal: "SIGTERM", signo: 15, code: null }, { status: "error", errno: "ENOENT", message: `no such program ${EVIL}` }]),
            ),
        );
        this.terminate(r);
        if (rng.chance(0.1)) this.write(encodeFrame(T.STDOUT, r.id, enc.encode("after the exit"))); // late: dropped by the host
        return;
      }
      case "LIST": {
        for (let page = rng.int(1, 3); page > 0; page--) {
          const last = page === 1;
          const jobs = Array.from({ length: rng.pick([0, 1, 5, 200]) }, (_, i) => ({ job: i + 1, tag: rng.chance(0.5) ? `j${i}` : null, pid: 100 + i, argv: ["sleep", EVIL], startedAt: 1.7e12, state: "running", attached: false, stdout: { total: 1, kept: 1 }, stderr: { total: 0, kept: 0 } }));
          this.either(p, "LISTING malformed", () => this.json(T.LISTING, r.id, { jobs: [{ job: "1", argv: ["x".repeat(100_000)] }], more: false }), () => this.json(T.LISTING, r.id, { jobs, more: !last }));
          await this.pause();
        }
        return this.terminate(r);
      }
      case "KILL":
        this.either(p, "DETACHED malformed", () => this.json(T.DETACHED, r.id, { errno: 5 }), () => this.json(T.DETACHED, r.id, rng.chance(0.5) ? {} : { errno: "ESRCH", message: "not running" }));
        return this.terminate(r);
      case "PING":
        this.either(p, "PONG with another payload", () => this.write(encodeFrame(T.PONG, r.id, enc.encode("other"))), () => this.write(encodeFrame(T.PONG, r.id, r.payload ?? new Uint8Array(0))));
        return this.terminate(r);
      case "PUT":
      case "PUTDIR": {
        if (rng.chance(0.15)) {
          // Refused early: the host must stop sending and report it.
          this.json(T.RESULT, r.id, { ok: false, errno: "ENOSPC", message: `disk full ${EVIL}` });
          return this.terminate(r);
        }
        if (!(await this.waitEnd(r, 1500))) return;
        const ok = r.kind === "PUT" ? { ok: true, size: r.received, mode: 0o644 } : { ok: true, files: r.entries, dirs: 0, symlinks: 0, bytes: r.received };
        this.either(p, "RESULT malformed", () => this.json(T.RESULT, r.id, { ok: "yes", size: -1 }), () => this.json(T.RESULT, r.id, ok));
        return this.terminate(r);
      }
      case "GET": {
        const size = rng.pick([0, 10, 100_000, 600_000]);
        const over = rng.chance(p);
        if (over) (c.broken = true), this.note(`bad: GET data past the credit`);
        await this.send(r, T.FILE_DATA, over ? DEFAULT_WINDOW + 10 : size, over);
        this.either(p, "RESULT with another size", () => this.json(T.RESULT, r.id, { ok: true, size: size + 1 }), () => this.json(T.RESULT, r.id, rng.chance(0.1) ? { ok: false, errno: "EACCES", message: "no" } : { ok: true, size, mode: rng.pick([0o644, 0o4755]), mtime: 1.7e9 }));
        return this.terminate(r);
      }
      case "GETDIR":
        return this.getdir(r, p);
      case "TCP_OPEN": {
        if (rng.chance(0.15)) {
          // Refused, or closed without ever opening: connectTcp must settle either way.
          this.either(0.5, "TCP_CLOSED ok:true without TCP_OPENED", () => this.json(T.TCP_CLOSED, r.id, { ok: true }), () => this.json(T.TCP_CLOSED, r.id, { ok: false, errno: "ECONNREFUSED", message: "refused" }));
          return this.terminate(r);
        }
        this.either(p, "TCP_DATA before TCP_OPENED", () => this.write(encodeFrame(T.TCP_DATA, r.id, enc.encode("early"))), () => this.json(T.TCP_OPENED, r.id, { address: "127.0.0.1", port: 80 }));
        await this.pause();
        if (rng.chance(p)) (c.broken = true), this.note("bad: TCP_OPENED twice"), this.json(T.TCP_OPENED, r.id, {});
        await this.send(r, T.TCP_DATA, rng.pick([0, 5, 70_000]));
        if (rng.chance(0.7)) this.write(encodeFrame(T.TCP_EOF, r.id));
        await this.waitEnd(r);
        this.json(T.TCP_CLOSED, r.id, rng.chance(0.8) ? { ok: true } : { ok: false, errno: "ECONNRESET", message: `reset ${EVIL}` });
        return this.terminate(r);
      }
    }
  }

  /** A GETDIR tree: plausible entries, and hostile ones the host must refuse without writing outside its target. */
  private async getdir(r: Req, p: number): Promise<void> {
    const rng = this.rng;
    const c = this.c!;
    const counts = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
    const entry = async (e: Record<string, unknown>, data = 0) => {
      const body = enc.encode(JSON.stringify(e));
      if (!(await this.credit(r, body.byteLength))) return false;
      r.outCredit -= body.byteLength;
      this.write(encodeFrame(T.DIR_ENTRY, r.id, body));
      if (data) await this.send(r, T.FILE_DATA, data);
      return true;
    };
    const base = { mode: 0o755, mtime: 1.7e12 };
    const plan: (() => Promise<unknown>)[] = [
      () => entry({ type: "dir", path: "a", ...base }).then(() => counts.dirs++),
      () => entry({ type: "file", path: "a/f", ...base, mode: rng.pick([0o644, 0o4755, 0o7777]), size: 1000 }, 1000).then(() => (counts.files++, (counts.bytes += 1000))),
      () => entry({ type: "symlink", path: "a/l", ...base, target: "f" }).then(() => counts.symlinks++),
    ];
    if (rng.chance(0.3)) {
      // Many directories: the receiver's bookkeeping per directory must stay bounded.
      const many = rng.pick([100, 2000]);
      for (let i = 0; i < many; i++) plan.push(() => entry({ type: "dir", path: `m${i}`, ...base }).then(() => counts.dirs++));
    }
    if (rng.chance(p * 2 + 0.1)) {
      c.broken = true;
      const evil = rng.pick([
        [{ type: "file", path: "../outside/x", ...base, size: 1 }],
        [{ type: "file", path: "/tmp/x", ...base, size: 1 }],
        [{ type: "symlink", path: "esc", ...base, target: "../../outside" }, { type: "file", path: "esc/x", ...base, size: 3 }],
        [{ type: "symlink", path: "a/l2", ...base, target: "/" }, { type: "dir", path: "a/l2/etc", ...base }],
        [{ type: "file", path: "a", ...base, size: 2 }],
        [{ type: "fifo", path: "p", ...base }],
        [{ type: "file", path: "big", ...base, size: 5 }],
      ]) as Record<string, unknown>[];
      this.note(`bad: GETDIR entries ${JSON.stringify(evil).slice(0, 200)}`);
      for (const e of evil) plan.push(() => entry(e, typeof e.size === "number" ? (e.path === "big" ? 10 : e.size) : 0));
    }
    for (const step of plan) {
      if (this.gone) return;
      await step();
    }
    this.write(encodeFrame(T.DIR_END, r.id));
    await this.pause();
    this.either(p, "RESULT with other counts", () => this.json(T.RESULT, r.id, { ok: true, ...counts, files: counts.files + 1 }), () => this.json(T.RESULT, r.id, { ok: true, ...counts, skipped: 0 }));
    this.terminate(r);
  }
}
