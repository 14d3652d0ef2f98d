// A hostile fake agent for the host's tests: a Unix-socket server that checks the magic, answers HELLO with
// whatever WELCOME the test gives (hand-made bytes allowed), and hands every later frame to the test's
// script, which answers with hand-made frames. It never trusts, and is never trusted by, our own agent code.
import { afterAll } from "bun:test";
import { createServer, type Server, type Socket } from "node:net";
import { FrameDecoder, MAGIC, T, encodeJson, type Frame } from "../../src/protocol/index.ts";
import type { TempDir } from "../helpers/tmp.ts";

export const GOOD_WELCOME = { version: 2, agent: "hostile", capabilities: ["exec", "files"], hostname: "h", kernel: "0", arch: "x64", initrd: false, pid: 1, maxPayload: 262144, window: 262144 };

export interface HostileOptions {
  /** The WELCOME body, or raw bytes to send instead, or null to never answer the HELLO. */
  welcome?: Record<string, unknown> | Uint8Array | null;
  /** Every frame after the HELLO. */
  onFrame?: (f: Frame, sock: Socket) => void;
}

export interface HostileAgent {
  readonly path: string;
  readonly addr: string;
  stop(): void;
}

export async function hostileAgent(path: string, opts: HostileOptions = {}): Promise<HostileAgent> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    const dec = new FrameDecoder();
    let head = Buffer.alloc(0);
    sock.on("data", (d: Buffer) => {
      if (head.length < MAGIC.length) {
        head = Buffer.concat([head, d]);
        if (head.length < MAGIC.length) return;
        if (!head.subarray(0, MAGIC.length).equals(Buffer.from(MAGIC))) return void sock.destroy();
        d = head.subarray(MAGIC.length);
      }
      let frames: Frame[];
      try {
        frames = dec.push(new Uint8Array(d));
      } catch {
        return void sock.destroy();
      }
      for (const f of frames) {
        if (f.type === T.HELLO) {
          const w = opts.welcome === undefined ? GOOD_WELCOME : opts.welcome;
          if (w instanceof Uint8Array) sock.write(w);
          else if (w !== null) sock.write(encodeJson(T.WELCOME, 0, w));
        } else opts.onFrame?.(f, sock);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    path,
    addr: `unix:${path}`,
    stop() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * Hostile agents for one test file, each on a fresh socket in `dir`, all stopped by the file's afterAll.
 * Call at module scope.
 */
export function hostileAgents(dir: TempDir): (opts?: HostileOptions) => Promise<HostileAgent> {
  const agents: HostileAgent[] = [];
  let n = 0;
  afterAll(() => {
    for (const a of agents) a.stop();
  });
  return async (opts = {}) => {
    const a = await hostileAgent(dir.file(`a${++n}.sock`), opts);
    agents.push(a);
    return a;
  };
}

/** Writes `frame` honouring the socket's back-pressure; false once the peer is gone. */
export function writeFrame(sock: Socket, frame: Uint8Array): Promise<boolean> {
  if (sock.destroyed || !sock.writable) return Promise.resolve(false);
  if (sock.write(frame)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      sock.off("drain", onDrain);
      sock.off("close", onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    sock.on("drain", onDrain);
    sock.on("close", onClose);
  });
}

/** Resident set size of a process, in bytes, from /proc/PID/status. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!kb) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb[1]) * 1024;
}

/** Control bytes a terminal would act on: C0 except newline, DEL, and C1 (as UTF-8 text). */
export const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
