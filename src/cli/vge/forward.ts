// `vge forward ADDRESS [BIND:]LOCAL_PORT:GUEST_HOST:GUEST_PORT`: like `ssh -L`, each connection accepted
// on the host becomes a TCP stream the agent opens inside the guest, over the one v2 connection. Bytes are
// pumped with back-pressure both ways (a paused socket, a stream write that waits for credit), and each
// side's half-close is passed on. A target the guest refuses ends only that connection, with one line.
import { defineCommand } from "citty";
import { createServer, type Server, type Socket } from "node:net";
import { UsageError } from "../../common/argv.ts";
import { GuestError, TcpError, tcpHostProblem, type Guest, type TcpStream } from "../../host/index.ts";
import { address, addressArg, commonArgs, seconds, tokenArg, waitArg } from "./_args.ts";
import { openGuest } from "./_guest.ts";
import { describeError, vgeLog, type Log } from "./_log.ts";
import { EXIT } from "./_exit.ts";
import { pullStream, pumpChunks, pumpToSocket } from "./_pump.ts";

export const FORWARD_NOTES = `
SPEC
  [BIND:]LOCAL_PORT:GUEST_HOST:GUEST_PORT    as ssh -L; BIND defaults to 127.0.0.1, LOCAL_PORT 0 picks a
                                             free port; GUEST_HOST is resolved and reached by the guest
                                             (its 127.0.0.1 is the guest itself); IPv6 in brackets: [::1]

EXAMPLES
  vge forward unix:/run/agent.sock 8080:127.0.0.1:80        host 127.0.0.1:8080 → guest's port 80
  vge forward fc:/run/fc/v.sock:1024 0.0.0.0:2222:localhost:22
  vge forward unix:/run/agent.sock '[::1]:5432:[::1]:5432'

  Runs until Ctrl-C (exit 0) or until the guest connection is lost (exit 255). A refused or unreachable
  target is reported on one line per connection, and the forward goes on.
`;

export interface ForwardSpec {
  bindHost: string;
  localPort: number;
  guestHost: string;
  guestPort: number;
}

/** Splits on ':' outside brackets: "[::1]:80:h:1" → ["::1", "80", "h", "1"]. */
function fields(spec: string): string[] {
  const out: string[] = [];
  const re = /\[([^\]]*)\]|([^:[\]]*)/y;
  for (let i = 0; ; ) {
    re.lastIndex = i;
    const m = re.exec(spec);
    if (!m) throw new UsageError(`cannot read the forward spec "${spec}"`);
    out.push(m[1] ?? m[2]!);
    i = re.lastIndex;
    if (i === spec.length) return out;
    if (spec[i] !== ":") throw new UsageError(`cannot read the forward spec "${spec}" at character ${i + 1}`);
    i++;
  }
}

function portOf(text: string, what: string, zero: boolean): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= (zero ? 0 : 1) && n <= 65535)) throw new UsageError(`${what} must be a port number ${zero ? 0 : 1}..65535, got "${text}"`);
  return n;
}

export function parseForward(spec: string): ForwardSpec {
  const f = fields(spec);
  if (f.length !== 3 && f.length !== 4) throw new UsageError(`the forward spec is [BIND:]LOCAL_PORT:GUEST_HOST:GUEST_PORT, got "${spec}"`);
  const [bindHost, local, guestHost, guestPort] = f.length === 4 ? (f as [string, string, string, string]) : ["127.0.0.1", ...(f as [string, string, string])];
  if (bindHost === "") throw new UsageError("the local bind address is empty");
  const problem = tcpHostProblem(guestHost);
  if (problem) throw new UsageError(`guest ${problem}`);
  return { bindHost, localPort: portOf(local, "LOCAL_PORT", true), guestHost, guestPort: portOf(guestPort, "GUEST_PORT", false) };
}

const show = (host: string, port: number) => `${host.includes(":") ? `[${host}]` : host}:${port}`;

/** One accepted connection ↔ one guest stream, until both directions have ended. */
async function serve(sock: Socket, guest: Guest, spec: ForwardSpec, log: Log, live: Set<TcpStream>): Promise<void> {
  const peer = show(sock.remoteAddress ?? "?", sock.remotePort ?? 0);
  const target = show(spec.guestHost, spec.guestPort);
  sock.pause();
  let stream: TcpStream | undefined;
  let failed = false;
  const fail = () => {
    if (failed) return;
    failed = true;
    stream?.reset();
    sock.destroy();
  };
  // From the start: a client that resets while the guest connects must not become an unhandled error.
  sock.on("error", fail);
  try {
    stream = await guest.connectTcp(spec.guestHost, spec.guestPort);
  } catch (e) {
    log.warn(`${peer}: guest ${target}: ${e instanceof TcpError ? e.code : describeError(e, log.verbose)}`);
    sock.destroy();
    return;
  }
  if (failed || sock.destroyed) return stream.reset();
  live.add(stream);
  sock.on("close", () => {
    // Closed before both directions ended (the local client reset or vanished): drop the guest side too.
    if (!sock.readableEnded || !sock.writableFinished) fail();
  });

  // Local → guest: one chunk in flight, the socket read only once the stream has taken the last one; its
  // end is our half-close. Guest → local: read (which returns credit) only as fast as the socket takes it.
  const pumpUp = pumpChunks(pullStream(sock), stream.writable.getWriter()).catch(fail);
  const pumpDown = pumpToSocket(stream.readable, sock);
  try {
    await Promise.all([pumpUp, pumpDown, stream.closed]);
  } catch (e) {
    if (!failed) log.warn(`${peer}: guest ${target}: ${e instanceof TcpError ? e.code : describeError(e, log.verbose)}`);
    fail();
  } finally {
    live.delete(stream);
  }
}

export default defineCommand({
  meta: { name: "forward", description: "Forward a local TCP port to a host and port reached from inside the guest (like ssh -L)" },
  args: {
    ...addressArg,
    spec: { type: "positional", required: true, valueHint: "[BIND:]LOCAL_PORT:GUEST_HOST:GUEST_PORT", description: "What to forward where" },
    ...waitArg,
    ...tokenArg,
    ...commonArgs,
  },
  async run({ args }) {
    if (args._.length !== 2) throw new UsageError("usage: vge forward ADDRESS [BIND:]LOCAL_PORT:GUEST_HOST:GUEST_PORT");
    const a = address(args._[0]);
    const spec = parseForward(args._[1]!);
    const log = vgeLog({ quiet: args.quiet, verbose: args.verbose });
    const guest = await openGuest(a, { waitMs: seconds("wait", args.wait), log, tokenFile: args["token-file"] });
    if (!guest.info.capabilities?.includes("tcp")) {
      guest.close();
      throw new GuestError("ENOTSUP", `the agent at ${args._[0]} (version ${guest.info.agent}) has no TCP streams; update it to forward ports`);
    }
    // Handlers first: Ctrl-C right after the "forwarding" line must already end the forward cleanly.
    const stop = new Promise<number>((resolve) => {
      const interrupted = () => resolve(EXIT.ok);
      process.once("SIGINT", interrupted);
      process.once("SIGTERM", interrupted);
      void guest.closed.then(() => resolve(EXIT.vge));
    });
    const live = new Set<TcpStream>();
    const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => void serve(sock, guest, spec, log, live));
    try {
      await new Promise<void>((resolve, reject) => server.once("error", reject).listen(spec.localPort, spec.bindHost, () => resolve()));
    } catch (e) {
      guest.close();
      throw new Error(`listen ${show(spec.bindHost, spec.localPort)}: ${(e as { code?: string }).code ?? (e as Error).message}`);
    }
    const bound = server.address() as { address: string; port: number };
    // Always said, even with --quiet: with LOCAL_PORT 0 this is the only place the port is told.
    process.stderr.write(`vge: forwarding ${show(bound.address, bound.port)} → ${show(spec.guestHost, spec.guestPort)} in the guest\n`);

    const status = await stop;
    server.close();
    for (const s of live) s.reset();
    if (status === EXIT.ok) log.info("forward stopped");
    else log.error(`the guest connection ended${guest.error ? `: ${guest.error.message}` : ""}`);
    guest.close();
    return status;
  },
});
