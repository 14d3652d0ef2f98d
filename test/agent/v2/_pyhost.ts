// Drives test/hosts/v2_host.py, the independent Python implementation of PROTOCOL.md v2, against the
// real agent: a script of ops in, one JSON report out.
import { join } from "node:path";
import { ROOT } from "../../helpers/build.ts";

export const PYTHON = Bun.which("python3");
export const V2_HOST = join(ROOT, "test", "hosts", "v2_host.py");

export type Json = Record<string, any>;
export interface Script {
  ops: Json[];
  timeout_s?: number;
  hello?: Json;
  no_wait_welcome?: boolean;
  linger_ms?: number;
  /** Authenticate with this token (hex); the other two make a hostile host (PROTOCOL.md §11). */
  token_hex?: string;
  auth_proof_hex?: string;
  ignore_agent_proof?: boolean;
}

export interface PyRun {
  /** Resolves once the host listens (listen mode) or has been started (connect mode). */
  ready: Promise<void>;
  report: Promise<Json>;
  pid: number;
}

/** `listen`: the agent dials `path`. `connect`: the agent listens on `path`. Killed after `killAfterMs`. */
export function pyHost(mode: "listen" | "connect", path: string, script: Script, killAfterMs = 60_000): PyRun {
  if (!PYTHON) throw new Error("python3 is not installed");
  const proc = Bun.spawn([PYTHON, V2_HOST, mode, path, "--script", JSON.stringify(script), "--accept-timeout", "15"], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: killAfterMs,
    killSignal: "SIGKILL",
  });
  let text = "";
  let markReady!: () => void;
  const ready = new Promise<void>((r) => (markReady = r));
  if (mode === "connect") markReady();
  const report = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stdout) {
      text += dec.decode(chunk, { stream: true });
      if (text.startsWith(`listening ${path}\n`)) markReady();
    }
    await proc.exited;
    markReady();
    const last = text.trimEnd().split("\n").at(-1) ?? "";
    if (proc.exitCode !== 0) throw new Error(`v2_host.py exit ${proc.exitCode ?? proc.signalCode}: ${last} ${await new Response(proc.stderr).text()}`);
    return JSON.parse(last) as Json;
  })();
  return { ready, report, pid: proc.pid };
}
