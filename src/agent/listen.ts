// Listen mode: the host dials the guest (QEMU's AF_VSOCK connect, Firecracker's `CONNECT <port>`).
// Any number of connections at once, each served on its own.
import { existsSync, lstatSync, unlinkSync, renameSync } from "node:fs";
import { POLLIN, VMADDR_CID_ANY, close, poll, vsockAccept, vsockListen } from "../sys/index.ts";
import { fdReady } from "../sys/fdwatch.ts";
import { T, encodeJson } from "../protocol/v2/frame.ts";
import { adoptFd, serverHandlers, type Conn } from "../transport/conn.ts";
import type { AgentConfig } from "./cli.ts";
import type { Log } from "./log.ts";
import { serveConnection } from "./session.ts";
import { lingerClose } from "./v2/linger.ts";
import { ConnSlots } from "./conn-slots.ts";

let conns: ConnSlots | undefined;
/**
 * The kernel's queue of vsock connections not yet accepted (capped by net.core.somaxconn). Deep enough that a
 * burst of connections does not turn a good host away before the agent has even seen it: the slots
 * (conn-slots.ts) decide who stays, not the queue.
 */
const BACKLOG = 1024;
/** Dropped connections are logged one by one up to this many per minute, then as a count: a flood must not flood the (serial) console too. */
const EVICTIONS_LOGGED_PER_MIN = 10;
let evictions = { windowStart: 0, logged: 0, quiet: 0 };

function logEviction(log: Log, line: string): void {
  const now = performance.now();
  if (now - evictions.windowStart > 60_000) {
    if (evictions.quiet > 0) log.error(`... and ${evictions.quiet} more connections dropped during their hello in the last minute`);
    evictions = { windowStart: now, logged: 0, quiet: 0 };
  }
  if (evictions.logged++ < EVICTIONS_LOGGED_PER_MIN) log.error(line);
  else evictions.quiet++;
}

/** Bytes (or the host's close) waiting in the kernel for `fd`: the host has spoken, even if not read yet. */
function pending(fd: number): boolean {
  try {
    return poll([{ fd, events: POLLIN }], 0)[0] !== 0;
  } catch {
    return false;
  }
}

/** adoptFd, or closes `fd` and says why: one connection that cannot be set up must not end the accept loop. */
async function adopt(fd: number, log: Log, who: string): Promise<Conn | undefined> {
  try {
    return await adoptFd(fd);
  } catch (e) {
    log.error(`${who}: cannot serve this connection: ${(e as Error).message}`);
    close(fd);
    return undefined;
  }
}

/** `fd`, when known, is the connection's own, so that the kernel can say whether the host has sent anything yet. */
function serveInBackground(conn: Conn, fd: number | undefined, cfg: AgentConfig, log: Log, who: string): void {
  conns ??= new ConnSlots(cfg.limits.conns);
  const evicted = new AbortController();
  let spoke = false;
  const slot = conns.admit({
    // Asked of the kernel too: in a burst, connections are accepted many at a time before any is read.
    hasSpoken: () => spoke || conn.reader.available > 0 || conn.reader.sawEnd || (fd !== undefined && pending(fd)),
    evict: () => {
      // A connection still in its hello makes room for this one (conn-slots.ts says which).
      const message = `dropped before completing the hello: all ${conns!.max} connection slots are taken and a newer connection needs one (see --max-conns)`;
      logEviction(log, `${who}: ${message}`);
      evicted.abort();
      conn.write(encodeJson(T.ERROR, 0, { code: "EBUSY", message })).catch(() => {});
      conn.close();
    },
  });
  if (!slot) {
    // Said before the host speaks: a v2 host reads it as the answer to its HELLO; others see the close.
    const message = `too many connections (limit ${conns.max}, see --max-conns)`;
    log.error(`refused ${who}: ${message}`);
    // Then the close after an ERROR (linger.ts): closing at once can reset the connection before the host
    // has even seen it established, or has read the ERROR. The write is not awaited: a host that never
    // reads must not hold the refusal open.
    conn.write(encodeJson(T.ERROR, 0, { code: "EBUSY", message })).catch(() => {});
    void lingerClose(conn, 1000);
    return;
  }
  log.debug(`accepted ${who}`);
  serveConnection(conn, cfg, log, { onSpoke: () => (spoke = true), onGreeted: () => slot.greeted(), evicted: evicted.signal })
    .then(
      (code) => log.debug(`${who}: done (${code})`),
      (e) => log.error(`${who}: ${(e as Error).message}`),
    )
    .finally(() => slot.release());
}

/** Ports below this can only be bound by root (CAP_NET_BIND_SERVICE) on the host, as with TCP. */
export const PRIVILEGED_PORTS = 1024;

/** Why a peer that listen mode accepted is turned away, or undefined to serve it. */
export function refusePeer(peer: { cid: number; port: number }, allowed: Set<number> | "any", privilegedOnly: boolean): string | undefined {
  if (allowed !== "any" && !allowed.has(peer.cid)) return "CID not allowed (see --allow-cid)";
  if (privilegedOnly && peer.port >= PRIVILEGED_PORTS) return `source port is not below ${PRIVILEGED_PORTS}, so any host user may have bound it (see --privileged-port)`;
  return undefined;
}

export async function listenVsock(cfg: AgentConfig, port: number, allowed: Set<number> | "any", log: Log): Promise<never> {
  const lfd = vsockListen({ cid: VMADDR_CID_ANY, port }, BACKLOG);
  log.info(`listening on vsock port ${port} (accepting ${allowed === "any" ? "any CID" : `CID ${[...allowed].join(", ")}`}${cfg.privilegedPort ? `, source ports below ${PRIVILEGED_PORTS} only` : ""})`);
  for (;;) {
    // Woken by the poll thread: an idle listening agent costs no wake-ups.
    await fdReady(lfd, POLLIN);
    for (let got = vsockAccept(lfd); got; got = vsockAccept(lfd)) {
      const refused = refusePeer(got.peer, allowed, cfg.privilegedPort);
      if (refused) {
        log.error(`refused a connection from CID ${got.peer.cid} port ${got.peer.port}: ${refused}`);
        close(got.fd);
        continue;
      }
      const who = `CID ${got.peer.cid} port ${got.peer.port}`;
      const conn = await adopt(got.fd, log, who);
      if (conn) serveInBackground(conn, got.fd, cfg, log, who);
    }
  }
}

export async function listenUnix(cfg: AgentConfig, path: string, log: Log): Promise<never> {
  // A socket file left by an earlier run would make bind fail; anything else at that path is not ours.
  if (existsSync(path) && lstatSync(path).isSocket()) unlinkSync(path);
  // Bun's own listener: no fd to ask the kernel about, so here a host has spoken once the agent has read
  // its bytes. (Accepting through the FFI layer as for vsock cost the soak test 3-5 MiB of idle RSS.)
  let n = 0;
  // Listening under a temporary name, then renamed into place: the socket file appears only once it
  // accepts, so a host (or a script) that waits for the file never meets ECONNREFUSED (bind makes the file
  // before listen).
  const tmp = `${path}.${process.pid}.tmp`;
  if (existsSync(tmp) && lstatSync(tmp).isSocket()) unlinkSync(tmp);
  Bun.listen({ unix: tmp, allowHalfOpen: true, data: undefined as never, socket: serverHandlers((conn) => serveInBackground(conn, undefined, cfg, log, `unix connection ${++n}`)) } as never);
  renameSync(tmp, path);
  log.info(`listening on unix ${path}`);
  return new Promise<never>(() => {});
}
