// A v2 client over one connection: the hello, then any number of executions, file transfers and pings at
// once, each under its own id. A failure of the connection rejects everything pending with one error.
import pkg from "../../package.json" with { type: "json" };
import { DEFAULT_WINDOW, ProtocolError, T, decodeJson, encodeFrame, encodeJson, type Frame } from "../protocol/v2/frame.ts";
import { MAX_LIST_ENTRIES, decodeAttach, refBody, validateDetached, validateListing, type JobInfo } from "../protocol/v2/jobs.ts";
import type { Welcome } from "../protocol/v2/messages.ts";
import { signalName } from "./_signals.ts";
import type { Conn } from "../transport/stream.ts";
import { Mux } from "./_mux.ts";
import type { PutSource } from "./_source.ts";
import { GuestError } from "./errors.ts";
import { resolveToken, type TokenOptions } from "./_auth.ts";
import { getDir, putDir, type DirInfo, type GetDirOptions } from "./dirs.ts";
import { getFile, putFile, type FileInfo, type GetOptions, type PutOptions, type RemoteFile } from "./files.ts";
import { toExecRequest, type Command, type ExecOptions } from "./options.ts";
import { RemoteProcess } from "./process.ts";
import { runProcess, type RunOptions, type RunResult } from "./run.ts";
import { connectTcp, type TcpStream } from "./tcp.ts";

export interface GuestOptions extends TokenOptions {
  /** Give up on the hello after this long (default 10 s). */
  helloTimeoutMs?: number;
  /** Sent in HELLO as `client`. */
  client?: string;
  /** How this guest is named in errors and logs (default: "guest"). */
  name?: string;
}

const DEFAULT_HELLO_MS = 10_000;

export class Guest {
  /** The agent's WELCOME: version, capabilities, hostname, kernel, arch, initrd, pid, window, ... */
  readonly info: Welcome;
  readonly name: string;
  /** Resolves when the connection has ended, for whatever reason. */
  readonly closed: Promise<void>;
  private readonly window: number;

  private constructor(
    private readonly mux: Mux,
    info: Welcome,
    closed: Promise<void>,
  ) {
    this.info = info;
    this.name = mux.name;
    this.closed = closed;
    // The credit for each stream we send (stdin, PUT, PUTDIR, TCP): §7's 262144, or less if the WELCOME
    // says so; never more (PROTOCOL.md §7), as the Go host reads it.
    this.window = typeof info.window === "number" && info.window > 0 ? Math.min(info.window, DEFAULT_WINDOW) : DEFAULT_WINDOW;
  }

  /** Says hello over a connected stream and waits for the WELCOME. Closes `conn` on failure. */
  static async open(conn: Conn, opts: GuestOptions = {}): Promise<Guest> {
    const name = opts.name ?? "guest";
    let token: Uint8Array | undefined;
    try {
      token = resolveToken(opts);
    } catch (e) {
      conn.close();
      throw e;
    }
    const mux = new Mux(conn, name);
    const ms = opts.helloTimeoutMs ?? DEFAULT_HELLO_MS;
    mux.hello(opts.client ?? `vge/${pkg.version}`, token);
    const timer = setTimeout(() => mux.fail(new GuestError("EHELLO", `${name}: no WELCOME within ${ms / 1000} s; an agent older than 0.2.0 speaks only the original format (use sendDisposable / vge send)`)), ms);
    try {
      return new Guest(mux, await mux.welcome, conn.closed);
    } catch (e) {
      const err = e as GuestError;
      if (err.code === "ECLOSED") throw new GuestError("EHELLO", `${name}: the agent closed the connection without answering the hello; an agent older than 0.2.0 does that (use sendDisposable / vge send)`, { cause: e });
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts a process. Throws at once if the connection has already failed or an option is invalid. */
  exec(cmd: Command, opts: ExecOptions = {}): RemoteProcess {
    return new RemoteProcess(this.mux, toExecRequest(cmd, opts), this.window);
  }

  /**
   * Follows a detached execution (exec with `detach`) again, from any connection: by tag, or by job number.
   * `from`: the offset per stream to replay from (default 0: all the agent still keeps); a process object's
   * `offsets` are where it stopped. `started` resolves once attached; `replay` then says what was dropped.
   * Rejects (`exited`, `result`, the streams) with GuestError ENOENT for an unknown job, EBUSY when
   * another connection takes the job over later; the process goes on either way.
   */
  attach(job: string | number, opts: { from?: { stdout?: number; stderr?: number } } = {}): RemoteProcess {
    const body: Record<string, unknown> = { ...refBody(job), ...(opts.from ? { from: opts.from } : {}) };
    try {
      decodeAttach(body);
    } catch (e) {
      if (e instanceof ProtocolError) throw new GuestError("EINVAL", e.message.replace(/^ATTACH: /, "attach: "));
      throw e;
    }
    return new RemoteProcess(this.mux, { attach: body }, this.window);
  }

  /** The agent's detached executions: running ones, and finished ones for 10 minutes (PROTOCOL.md §5.1). */
  list(timeoutMs = 10_000): Promise<JobInfo[]> {
    return this.request(T.LIST, {}, timeoutMs, (f, done) => {
      if (f.type !== T.LISTING) throw new ProtocolError(`unexpected frame type ${f.type} for a LIST`);
      const page = validateListing(decodeJson(f));
      const jobs = (done.jobs ??= []);
      jobs.push(...page.jobs);
      if (jobs.length > MAX_LIST_ENTRIES) throw new ProtocolError(`LISTING: more than ${MAX_LIST_ENTRIES} jobs`);
      return page.more ? undefined : jobs;
    });
  }

  /** Signals a detached execution's process group without attaching to it. GuestError ENOENT / ESRCH if there is none running. */
  async kill(job: string | number, signal: string | number = "SIGTERM", timeoutMs = 10_000): Promise<void> {
    const body = { ...refBody(job), signal: signalName(signal) };
    await this.request(T.KILL, body, timeoutMs, (f) => {
      if (f.type !== T.DETACHED) throw new ProtocolError(`unexpected frame type ${f.type} for a KILL`);
      const d = validateDetached(decodeJson(f));
      if (d.errno) throw new GuestError(d.errno, `${this.name}: ${d.message}`);
      return true;
    });
  }

  /** One request frame under a fresh id; `onFrame` returns the answer when complete (undefined: more to come). */
  private request<R>(type: number, body: unknown, timeoutMs: number, onFrame: (f: Frame, acc: { jobs?: JobInfo[] }) => R | undefined): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const acc: { jobs?: JobInfo[] } = {};
      let timer: ReturnType<typeof setTimeout> | undefined;
      const id = this.mux.register({
        frame: (f) => {
          let r: R | undefined;
          try {
            r = onFrame(f, acc);
          } catch (e) {
            clearTimeout(timer);
            this.mux.release(id);
            if (e instanceof ProtocolError) return reject(this.mux.fail(new GuestError("EPROTO", `${this.name}: ${e.message}`, { cause: e })));
            return reject(e);
          }
          if (r === undefined) return;
          clearTimeout(timer);
          this.mux.release(id);
          resolve(r);
        },
        fail: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      timer = setTimeout(() => {
        this.mux.release(id);
        reject(new GuestError("ETIMEDOUT", `${this.name}: no answer within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.mux.post(encodeJson(type, id, body));
    });
  }

  /** Runs a process to its end and collects its output (stdin closed unless `input` is given). */
  run(cmd: Command, opts: RunOptions = {}): Promise<RunResult> {
    return runProcess((c, o) => this.exec(c, o), cmd, opts);
  }

  /** Writes a file in the guest atomically (temporary file, fsync, rename). */
  putFile(path: string, data: PutSource, opts: PutOptions = {}): Promise<FileInfo> {
    return putFile(this.mux, this.window, path, data, opts);
  }

  /** Reads a file from the guest as a stream. */
  getFile(path: string, opts: GetOptions = {}): RemoteFile {
    return getFile(this.mux, path, opts);
  }

  /** A whole file from the guest. */
  readFile(path: string, opts: GetOptions = {}): Promise<Uint8Array> {
    return this.getFile(path, opts).bytes();
  }

  /**
   * Copies the host directory `localDir` into the guest as `remoteDir` (created if missing, merged if it
   * exists): files, directories, symlinks, modes and mtimes, as one stream the agent writes itself.
   */
  putDir(localDir: string, remoteDir: string): Promise<DirInfo> {
    return putDir(this.mux, this.window, this.info.capabilities ?? [], localDir, remoteDir);
  }

  /**
   * Copies the guest directory `remoteDir` to the host as `localDir` (created if missing, merged if it
   * exists). The guest is not trusted: nothing lands outside `localDir`, no symlink is followed, and
   * setuid, setgid and sticky bits are dropped.
   */
  getDir(remoteDir: string, localDir: string, opts: GetDirOptions = {}): Promise<DirInfo> {
    return getDir(this.mux, this.window, this.info.capabilities ?? [], remoteDir, localDir, opts);
  }

  /**
   * Opens a TCP connection from inside the guest to `host:port` (resolved and reached by the guest: its
   * 127.0.0.1 is the guest's own). Resolves once the agent has connected; a refused target rejects with
   * a TcpError carrying the guest's errno, and the connection and other streams go on.
   */
  async connectTcp(host: string, port: number): Promise<TcpStream> {
    return connectTcp(this.mux, this.window, this.info.capabilities ?? [], host, port);
  }

  /** Round trip of a PING, in milliseconds. */
  ping(timeoutMs = 10_000): Promise<number> {
    const payload = crypto.getRandomValues(new Uint8Array(8));
    return new Promise<number>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const id = this.mux.register({
        frame: (f) => {
          if (f.type !== T.PONG) return;
          clearTimeout(timer);
          this.mux.release(id);
          const same = f.payload.byteLength === payload.byteLength && f.payload.every((b, i) => b === payload[i]);
          if (same) resolve(performance.now() - t0);
          else reject(this.mux.fail(new GuestError("EPROTO", `${this.name}: PONG does not carry the PING's payload`)));
        },
        fail: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      timer = setTimeout(() => {
        this.mux.release(id);
        reject(new GuestError("ETIMEDOUT", `${this.name}: no PONG within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const t0 = performance.now();
      this.mux.post(encodeFrame(T.PING, id, payload));
    });
  }

  /** True when the agent proved it holds the token (and this host proved it too) before `info` arrived. */
  get authenticated(): boolean {
    return this.mux.authenticated;
  }

  /** The connection's failure, if it has failed. */
  get error(): Error | undefined {
    return this.mux.error;
  }

  /** Closes the connection; the agent kills this connection's processes that still run, but detached ones. */
  close(): void {
    this.mux.close();
  }
}
