// Listen mode: the host dials the guest (QEMU's AF_VSOCK connect, Firecracker's `CONNECT <port>`).
// Any number of connections at once, each served on its own.
import { existsSync, lstatSync, unlinkSync, renameSync } from "node:fs";
import { POLLIN, VMADDR_CID_ANY, close, vsockAccept, vsockListen } from "../sys/index.ts";
import { fdReady } from "../sys/fdwatch.ts";
import { T, encodeJson } from "../protocol/v2/frame.ts";
import { adoptFd, serverHandlers, type Conn } from "../transport/conn.ts";
import type { AgentConfig } from "./cli.ts";
import type { Log } from "./log.ts";
import { serveConnection } from "./session.ts";
import { lingerClose } from "./v2/linger.ts";
import { Quota } from "./v2/quota.ts";

let conns: Quota | undefined;

function serveInBackground(conn: Conn, cfg: AgentConfig, log: Log, who: string): void {
  conns ??= new Quota(cfg.limits.conns);
  if (!conns.take()) {
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
  serveConnection(conn, cfg, log)
    .then(
      (code) => log.debug(`${who}: done (${code})`),
      (e) => log.error(`${who}: ${(e as Error).message}`),
    )
    .finally(() => conns!.give());
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
  const lfd = vsockListen({ cid: VMADDR_CID_ANY, port });
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
      serveInBackground(await adoptFd(got.fd), cfg, log, `CID ${got.peer.cid} port ${got.peer.port}`);
    }
  }
}

export async function listenUnix(cfg: AgentConfig, path: string, log: Log): Promise<never> {
  // A socket file left by an earlier run would make bind fail; anything else at that path is not ours.
  if (existsSync(path) && lstatSync(path).isSocket()) unlinkSync(path);
  let n = 0;
  // Listening under a temporary name, then renamed into place: the socket file appears only once it
  // accepts, so a host (or a script) that waits for the file never meets ECONNREFUSED (bind makes the file
  // before listen).
  const tmp = `${path}.${process.pid}.tmp`;
  if (existsSync(tmp) && lstatSync(tmp).isSocket()) unlinkSync(tmp);
  Bun.listen({ unix: tmp, allowHalfOpen: true, data: undefined as never, socket: serverHandlers((conn) => serveInBackground(conn, cfg, log, `unix connection ${++n}`)) } as never);
  renameSync(tmp, path);
  log.info(`listening on unix ${path}`);
  return new Promise<never>(() => {});
}
