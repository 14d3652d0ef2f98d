// Runs `vge` as a user would: a separate process, under a hard deadline, killed by its own pid.
import { join } from "node:path";
import { ROOT } from "../helpers/build.ts";

export const VGE = join(ROOT, "src/cli/vge.ts");

export interface VgeResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface VgeOptions {
  stdin?: string | Uint8Array | "ignore";
  env?: Record<string, string>;
  timeoutMs?: number;
}

export function startVge(args: string[], opts: VgeOptions = {}) {
  const t0 = performance.now();
  const stdin = opts.stdin === undefined || opts.stdin === "ignore" ? "ignore" : new Blob([opts.stdin]);
  const proc = Bun.spawn(["bun", VGE, ...args], {
    stdin,
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1", ...opts.env },
    timeout: opts.timeoutMs ?? 20_000,
    killSignal: "SIGKILL",
  });
  const done = (async (): Promise<VgeResult> => {
    const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    await proc.exited;
    return { code: proc.exitCode, stdout, stderr, ms: performance.now() - t0 };
  })();
  return { proc, done };
}

export function vge(args: string[], opts: VgeOptions = {}): Promise<VgeResult> {
  return startVge(args, opts).done;
}

/** vge's own stderr lines (`vge: ...`), without the command's output. */
export const vgeLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("vge: "));
