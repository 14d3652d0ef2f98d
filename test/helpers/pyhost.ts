// Drives test/hosts/legacy_host.py: a host whose frames come from Python's struct, not from our encoder.
import { join } from "node:path";
import { ROOT } from "./build.ts";

export const PYTHON = Bun.which("python3");
const SCRIPT = join(ROOT, "test", "hosts", "legacy_host.py");

export type Step =
  | { send: string }
  | { send_hex: string }
  | { frame: string }
  | { frame_hex: string }
  | { header: number }
  | { sleep_ms: number }
  | { shutdown: true }
  | { close: true };

export interface HostReport {
  sent: number;
  /** From the end of the script to the agent's EOF; null when the host closed first. */
  eof_ms: number | null;
  received_hex: string;
  error: string | null;
}

export interface PyHost {
  /** The host's report, once the agent has gone (or the host's own timeouts hit). */
  report: Promise<HostReport>;
}

/** Starts the host and resolves once it listens on `path`. */
export async function startPyHost(path: string, steps: Step[], timeoutMs = 20_000): Promise<PyHost> {
  if (!PYTHON) throw new Error("python3 is not installed");
  const proc = Bun.spawn([PYTHON, SCRIPT, "--socket", path, "--spec", JSON.stringify(steps), "--accept-timeout", "15", "--eof-timeout", "15"], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
  });
  const out = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await out.read();
    if (done) throw new Error(`legacy_host.py exited before listening: ${await new Response(proc.stderr).text()}`);
    text += decoder.decode(value, { stream: true });
  }
  if (!text.startsWith(`listening ${path}\n`)) throw new Error(`legacy_host.py said ${JSON.stringify(text)}`);
  const report = (async () => {
    for (;;) {
      const { value, done } = await out.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await proc.exited;
    const last = text.trimEnd().split("\n").at(-1)!;
    if (proc.exitCode !== 0) throw new Error(`legacy_host.py exit ${proc.exitCode}: ${last} ${await new Response(proc.stderr).text()}`);
    return JSON.parse(last) as HostReport;
  })();
  return { report };
}
