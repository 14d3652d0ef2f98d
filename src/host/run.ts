// guest.run(): an execution collected whole, like child_process.spawnSync or Bun's `$` without a shell.
import type { ExitResult } from "../protocol/v2/messages.ts";
import { collect } from "./_inbox.ts";
import { GuestError } from "./errors.ts";
import { shellStatus } from "../common/exit.ts";
import type { Command, ExecOptions } from "./options.ts";
import type { RemoteProcess } from "./process.ts";

export interface RunOptions extends Omit<ExecOptions, "stdin"> {
  /** Bytes for stdin, then STDIN_EOF. Without it the process gets a closed stdin (/dev/null). */
  input?: string | Uint8Array | ReadableStream<Uint8Array>;
  /** Most bytes kept per stream (default 64 MiB); beyond it the process is killed and run() rejects. */
  maxBuffer?: number;
}

export interface RunResult {
  status: ExitResult["status"];
  /** The exit code when status is "exited", else null. */
  code: number | null;
  /** The signal name when status is "signaled" or "timeout", else null. */
  signal: string | null;
  /** errno and message when status is "error" (the process never started). */
  errno?: string;
  message?: string;
  /** The status a shell would report: code, 128+n, 124 for a timeout, 127/126 for start failures. */
  exitStatus: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** stdout / stderr decoded as UTF-8. */
  readonly stdoutText: string;
  readonly stderrText: string;
  result: ExitResult;
  durationMs: number;
  /** What the execution used, when asked for (`usage` or `limits`); see PROTOCOL.md §5.2. */
  usage?: ExitResult["usage"];
  /** True when the kernel's OOM killer ended a process of the execution (agent with --cgroup). */
  oom?: boolean;
}

const DEFAULT_MAX_BUFFER = 64 * 1024 * 1024;
const dec = new TextDecoder();

export async function runProcess(exec: (cmd: Command, o: ExecOptions) => RemoteProcess, cmd: Command, opts: RunOptions = {}): Promise<RunResult> {
  const { input, maxBuffer = DEFAULT_MAX_BUFFER, ...rest } = opts;
  const t0 = performance.now();
  const proc = exec(cmd, { ...rest, stdin: input === undefined ? "closed" : "pipe" });
  const feeding = feed(proc, input);
  let stdout: Uint8Array, stderr: Uint8Array;
  try {
    [stdout, stderr] = await Promise.all([collect(proc.stdout, maxBuffer), collect(proc.stderr, maxBuffer)]);
  } catch (e) {
    if (e instanceof RangeError) {
      proc.kill("SIGKILL");
      await proc.result.catch(() => {});
      throw new GuestError("EMAXBUFFER", `run: ${e.message} (maxBuffer); the process was killed`, { cause: e });
    }
    throw e;
  }
  const result = await proc.result;
  await feeding;
  return {
    status: result.status,
    code: result.status === "exited" ? result.code : null,
    signal: result.status === "signaled" || result.status === "timeout" ? result.signal : null,
    ...(result.status === "error" ? { errno: result.errno, message: result.message } : {}),
    exitStatus: shellStatus(result),
    stdout,
    stderr,
    get stdoutText() {
      return dec.decode(stdout);
    },
    get stderrText() {
      return dec.decode(stderr);
    },
    result,
    durationMs: performance.now() - t0,
    ...(result.usage ? { usage: result.usage } : {}),
    ...(result.oom !== undefined ? { oom: result.oom } : {}),
  };
}

/** Writes the input and closes stdin; a process that exits without reading it all is not an error. */
async function feed(proc: RemoteProcess, input: RunOptions["input"]): Promise<void> {
  if (input === undefined || !proc.stdin) return;
  try {
    if (input instanceof ReadableStream) await input.pipeTo(proc.stdin);
    else {
      const w = proc.stdin.getWriter();
      await w.write(input);
      await w.close();
    }
  } catch {
    // EPIPE after the exit is normal (`head -c1`); a connection failure reaches `exited`, which run() reports.
  }
}
