// One connection to the host: decide which format it speaks and serve it.
import type { Conn } from "../transport/conn.ts";
import type { AgentConfig } from "./cli.ts";
import { runDisposable, runDisposableInChild } from "./disposable.ts";
import { EXIT } from "./limits.ts";
import type { Log } from "./log.ts";
import { runPersistent } from "./persistent.ts";
import { sniffV2 } from "./v2/sniff.ts";
import { V2Session } from "./v2/server.ts";
import { tracked } from "./shutdown.ts";
import { lingerClose } from "./v2/linger.ts";
import { T, encodeJson } from "../protocol/v2/frame.ts";

export interface ServeOptions {
  /** The connection's fd when this process may become the command (connect mode, disposable). */
  execFd?: number;
  /** Called once the host has sent its first bytes (the v2 magic, or an original-format command). */
  onSpoke?: () => void;
  /** Called once the host has finished its hello (v2: after AUTH with a token; original formats: their first bytes). */
  onGreeted?: () => void;
  /** Aborted when listen mode dropped this connection during its hello for a newer one (conn-slots.ts). */
  evicted?: AbortSignal;
}

/**
 * Serves one connection to its end and closes it; returns what the agent's exit code would be. Never
 * throws: whatever a host sends, the agent goes on (an unexpected failure is logged and returns 1).
 */
export async function serveConnection(conn: Conn, cfg: AgentConfig, log: Log, opts: ServeOptions = {}): Promise<number> {
  try {
    return await serve(conn, cfg, log, opts);
  } catch (e) {
    log.error(`connection failed: ${(e as Error)?.message ?? String(e)}`);
    return EXIT.connect;
  } finally {
    conn.close();
  }
}

async function serve(conn: Conn, cfg: AgentConfig, log: Log, opts: ServeOptions): Promise<number> {
  const limitMs = cfg.handshakeTimeoutMs;
  // A host that dialed in must speak up: in listen mode the deadline runs from the connection. A host the
  // agent dialed may take its time before the first byte, as the original tool allowed (a disposable or
  // persistent host may accept and send its command later); the v2 hello is timed from its magic.
  const listenDeadline = cfg.listen && limitMs > 0 ? performance.now() + limitMs : undefined;
  const kind = await sniffV2(conn.reader, cfg.pauseMs, listenDeadline);
  // Closed under us to make room: the close is all there is to it (listen.ts has logged it).
  if (opts.evicted?.aborted) return EXIT.connect;
  if (kind !== "silent") opts.onSpoke?.();
  if (kind === "silent") {
    const message = `the host sent nothing within ${limitMs / 1000} s of connecting (see --handshake-timeout)`;
    log.error(`${message}; closing this connection`);
    // As for EBUSY: a v2 host reads it as the answer to its HELLO; others see the close.
    void conn.write(encodeJson(T.ERROR, 0, { code: "ETIMEDOUT", message })).catch(() => {});
    await lingerClose(conn);
    return EXIT.connect;
  }
  if (kind === "v2") {
    log.debug("host speaks protocol v2");
    const handshakeTimeout = limitMs > 0 ? { deadline: listenDeadline ?? performance.now() + limitMs, ms: limitMs } : undefined;
    const session = new V2Session(conn, log, { limits: cfg.limits, token: cfg.token, handshakeTimeout, onGreeted: opts.onGreeted });
    await tracked(session, () => session.run());
    // A host that failed to authenticate is no success: a disposable boot step must not go on as if
    // its command had run. Nor is one that never finished its hello (the connection failed).
    if (session.authRefused) return EXIT.auth;
    return session.timedOut ? EXIT.connect : EXIT.ok;
  }
  if (cfg.token && !cfg.allowLegacy) {
    // The original formats carry no proof: with a token set, serving them would undo it.
    log.error(`refused a host speaking the original ${cfg.mode} format: a token is set and that format cannot authenticate (see --allow-legacy)`);
    return EXIT.auth;
  }
  // The original formats have no hello to wait for: a host that sent its first bytes is past it.
  opts.onGreeted?.();
  if (cfg.mode === "persistent") return await runPersistent(conn.reader, { log });
  if (opts.execFd !== undefined) return await runDisposable(conn.reader, opts.execFd, { pauseMs: cfg.pauseMs, log });
  return await runDisposableInChild(conn.reader, { pauseMs: cfg.pauseMs, log });
}
