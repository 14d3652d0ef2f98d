// One connection to the host: decide which format it speaks and serve it.
import type { Conn } from "../transport/conn.ts";
import type { AgentConfig } from "./cli.ts";
import { runDisposable } from "./disposable.ts";
import { runPersistent } from "./persistent.ts";
import type { Log } from "./log.ts";

export async function serve(conn: Conn, fd: number, cfg: AgentConfig, log: Log): Promise<number> {
  if (cfg.mode === "persistent") return runPersistent(conn.reader, { log });
  return runDisposable(conn.reader, fd, { pauseMs: cfg.pauseMs, log });
}
