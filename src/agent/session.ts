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

export interface ServeOptions {
  /** The connection's fd when this process may become the command (connect mode, disposable). */
  execFd?: number;
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
  if (await sniffV2(conn.reader, cfg.pauseMs)) {
    log.debug("host speaks protocol v2");
    const session = new V2Session(conn, log, { limits: cfg.limits, token: cfg.token });
    await tracked(session, () => session.run());
    // A host that failed to authenticate is no success: a disposable boot step must not go on as if
    // its command had run.
    return session.authRefused ? EXIT.auth : EXIT.ok;
  }
  if (cfg.token && !cfg.allowLegacy) {
    // The original formats carry no proof: with a token set, serving them would undo it.
    log.error(`refused a host speaking the original ${cfg.mode} format: a token is set and that format cannot authenticate (see --allow-legacy)`);
    return EXIT.auth;
  }
  if (cfg.mode === "persistent") return await runPersistent(conn.reader, { log });
  if (opts.execFd !== undefined) return await runDisposable(conn.reader, opts.execFd, { pauseMs: cfg.pauseMs, log });
  return await runDisposableInChild(conn.reader, { pauseMs: cfg.pauseMs, log });
}
