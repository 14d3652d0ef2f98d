// Processes the bench starts: always bounded (timeout + SIGKILL), always ended by the PID we hold, and
// helpers to wait for a Unix socket and to read a process's memory from /proc.
import { type Subprocess, spawn } from "bun";
import { readFileSync } from "node:fs";

const started = new Set<Subprocess>();

/** Starts a helper process that lives at most `timeoutMs`; stop it with stop() or stopAll(). */
export function start(cmd: string[], opts: { timeoutMs: number; stdout?: "ignore" | "pipe" | "inherit"; stderr?: "ignore" | "pipe" | "inherit"; stdin?: "ignore" | "pipe" | Blob; env?: Record<string, string | undefined> }): Subprocess {
  const p = spawn(cmd, { stdin: opts.stdin ?? "ignore", stdout: opts.stdout ?? "ignore", stderr: opts.stderr ?? "ignore", timeout: Math.max(1, Math.round(opts.timeoutMs)), killSignal: "SIGKILL", env: opts.env as Record<string, string> | undefined });
  started.add(p);
  p.exited.then(() => started.delete(p));
  return p;
}

export async function stop(p: Subprocess): Promise<void> {
  if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  await p.exited;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...started].map(stop));
}
process.once("exit", () => {
  for (const p of started) p.kill("SIGKILL");
});

/** Resolves once something accepts a connection on the Unix socket `path`; polls every `everyMs`. */
export async function waitUnix(path: string, timeoutMs: number, everyMs = 1): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const s = await Bun.connect({ unix: path, socket: { data() {} } });
      s.end();
      return;
    } catch {
      if (performance.now() > deadline) throw new Error(`nothing listening on ${path} after ${timeoutMs} ms`);
      await Bun.sleep(everyMs);
    }
  }
}

/** VmRSS and RssAnon of a process in KiB, from /proc/PID/status. */
export function memKiB(pid: number): { rss: number; anon: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN);
  return { rss: get("VmRSS"), anon: get("RssAnon") };
}

/** Runs `cmd` to completion with a bound; throws with its stderr when it fails. */
export async function run(cmd: string[], timeoutMs: number): Promise<string> {
  const p = start(cmd, { timeoutMs, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout as ReadableStream).text(), new Response(p.stderr as ReadableStream).text(), p.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}: ${err.trim().slice(0, 500)}`);
  return out;
}
