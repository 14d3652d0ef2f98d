// The host side of a guest's vsock connections, as vhost-device-vsock presents them: a guest's
// connect() to host port P arrives as a connection on the Unix socket `${uds}_${P}`, which the host
// must be listening on before the guest dials. Only Unix sockets here: nothing on this machine ever
// touches AF_VSOCK.
import { existsSync, readFileSync, unlinkSync } from "node:fs";
import { connect as netConnect, createServer, type Server, type Socket } from "node:net";

/** True when some process listens on the Unix socket `path` (read from /proc/net/unix, never by connecting). */
export function unixListening(path: string): boolean {
  // Columns: Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 is __SO_ACCEPTCON (listening).
  for (const line of readFileSync("/proc/net/unix", "utf8").split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[7] === path && f[3] === "00010000") return true;
  }
  return false;
}

/** One accepted connection: what it received, and ways to answer and to wait for its end. */
export class HostConnection {
  private chunks: Buffer[] = [];
  /** Resolves when the guest closed its side (EOF). */
  readonly ended: Promise<void>;
  /** Resolves when the connection is fully closed (our side follows the guest's EOF at once). */
  readonly closed: Promise<void>;

  /** `initial`: bytes that arrived before this wrapper took over (after a CONNECT reply). */
  constructor(readonly socket: Socket, initial?: Buffer) {
    if (initial?.length) this.chunks.push(initial);
    socket.on("data", (b: Buffer) => this.chunks.push(b));
    socket.on("error", () => {}); // a reset shows as `closed`; the test decides whether it matters
    this.ended = new Promise((res) => socket.once("end", () => res()).once("close", () => res()));
    this.closed = new Promise((res) => socket.once("close", () => res()));
  }

  received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  write(data: string | Uint8Array): Promise<void> {
    return new Promise((res, rej) => this.socket.write(data, (err) => (err ? rej(err) : res())));
  }

  /**
   * Half-close. Beware: vhost-device-vsock 0.3.0 turns the EOF it reads here into a SHUTDOWN of both
   * directions for the guest, so the connection ends at once and the host cannot see when the guest's
   * command finished. To watch a disposable command to its end, send it and do not call end(): the
   * agent takes it as complete after its pause (250 ms).
   */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Listens on a Unix socket path and hands out accepted connections in order. */
export class HostListener {
  private queue: HostConnection[] = [];
  private waiters: ((c: HostConnection) => void)[] = [];
  private all: HostConnection[] = [];
  private constructor(readonly path: string, private server: Server) {
    server.on("connection", (s) => {
      const c = new HostConnection(s);
      this.all.push(c);
      const w = this.waiters.shift();
      if (w) w(c);
      else this.queue.push(c);
    });
  }

  static listen(path: string): Promise<HostListener> {
    if (existsSync(path)) unlinkSync(path); // a stale socket file from an earlier host
    const server = createServer({ allowHalfOpen: false });
    return new Promise((res, rej) => {
      server.once("error", rej);
      server.listen(path, () => res(new HostListener(path, server)));
    });
  }

  /** The next connection from the guest; rejects after timeoutMs. */
  accept(timeoutMs: number): Promise<HostConnection> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        rej(new Error(`no guest connection on ${this.path} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (c: HostConnection) => {
        clearTimeout(timer);
        res(c);
      };
      this.waiters.push(waiter);
    });
  }

  /** Number of connections accepted so far (taken or still queued). */
  get count(): number {
    return this.all.length;
  }

  /** Stops listening, drops every connection it accepted and removes the socket file. */
  async close(): Promise<void> {
    for (const c of this.all) c.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
    if (existsSync(this.path)) unlinkSync(this.path);
  }
}

/**
 * Dials a guest that listens on vsock port `port`, Firecracker style: connect to the backend's Unix
 * socket `uds`, write `CONNECT <port>\n`, expect `OK <host port>\n`. The backend closes the connection
 * instead while nothing listens in the guest: retried every 200 ms until timeoutMs.
 */
export async function connectGuest(uds: string, port: number, timeoutMs: number): Promise<HostConnection> {
  const until = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const r = await connectOnce(uds, port);
    if (r instanceof HostConnection) return r;
    last = r;
    if (Date.now() > until) throw new Error(`CONNECT ${port} via ${uds} failed for ${timeoutMs} ms; last: ${last}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

function connectOnce(uds: string, port: number): Promise<HostConnection | string> {
  return new Promise((resolve) => {
    const sock = netConnect({ path: uds, allowHalfOpen: false });
    let head = Buffer.alloc(0);
    const fail = (why: string) => {
      sock.destroy();
      resolve(why);
    };
    const onData = (b: Buffer) => {
      head = Buffer.concat([head, b]);
      const nl = head.indexOf(10);
      if (nl < 0) return;
      const line = head.subarray(0, nl).toString();
      if (!line.startsWith("OK ")) return fail(`reply "${line}"`);
      sock.off("data", onData).off("close", onClose).off("error", onError);
      resolve(new HostConnection(sock, head.subarray(nl + 1)));
    };
    const onClose = () => fail("closed before OK (is the agent listening on that port?)");
    const onError = (e: Error) => fail(e.message);
    sock.on("data", onData).once("close", onClose).once("error", onError);
    sock.once("connect", () => sock.write(`CONNECT ${port}\n`));
  });
}

/** The original persistent format: a 2-byte little-endian length, then the command bytes. */
export function legacyFrame(command: string): Uint8Array {
  const body = new TextEncoder().encode(command);
  if (body.byteLength > 0xffff) throw new Error(`command of ${body.byteLength} bytes does not fit a 2-byte length`);
  const out = new Uint8Array(2 + body.byteLength);
  out[0] = body.byteLength & 0xff;
  out[1] = body.byteLength >> 8;
  out.set(body, 2);
  return out;
}
