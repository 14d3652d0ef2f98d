// Disposable mode: one command, then this process becomes `/bin/sh -c COMMAND`.
import { execve, resetSignals } from "../sys/exec.ts";
import { setCloexec } from "../sys/socket.ts";
import { readDisposable } from "../protocol/legacy.ts";
import type { ByteReader } from "../transport/reader.ts";
import { EXIT } from "./limits.ts";
import { describeCommand, type Log } from "./log.ts";
import { describeExit, localExit, shellStatus } from "../common/exit.ts";
import { containment } from "./v2/contain.ts";

export interface DisposableOptions {
  pauseMs: number;
  log: Log;
}

/**
 * Reads the command and execs the shell in place of this process; returns only an exit code for the
 * cases where nothing may run. The socket fd `keepFd` stays open across execve on purpose: the host sees
 * the connection close when the command has finished, exactly as with the original.
 */
export async function runDisposable(reader: ByteReader, keepFd: number, { pauseMs, log }: DisposableOptions): Promise<number> {
  const got = await readDisposable(reader, pauseMs);
  if (got.kind === "too-long") {
    log.error("command is longer than 2048 bytes; refused, nothing was run");
    return EXIT.input;
  }
  if (got.kind === "empty") {
    log.error("the host sent no command; nothing was run");
    return EXIT.input;
  }
  log.info(`running command (${describeCommand(got.command, log.verbose)}, ended by ${got.ended}); its exit status becomes ours`);
  try {
    setCloexec(keepFd, false);
    resetSignals();
    execve("/bin/sh", ["sh", "-c", got.command], process.env);
  } catch (e) {
    log.error(`cannot run /bin/sh: ${(e as Error).message}`);
    return EXIT.exec;
  }
}

/**
 * Disposable format on a connection the agent accepted (listen mode): the listener must live on, so the
 * command runs as a child, and the connection is closed when it has finished, as the host expects.
 */
export async function runDisposableInChild(reader: ByteReader, { pauseMs, log }: DisposableOptions): Promise<number> {
  const got = await readDisposable(reader, pauseMs);
  if (got.kind !== "command") {
    log.error(got.kind === "too-long" ? "command is longer than 2048 bytes; refused, nothing was run" : "the host sent no command; nothing was run");
    return EXIT.input;
  }
  const proc = Bun.spawn(["/bin/sh", "-c", new TextDecoder().decode(got.command)], { stdio: ["inherit", "inherit", "inherit"] });
  // The runtime reaps it, not the agent's orphan tracking (v2/track.ts).
  containment().tracking?.spawned(proc.pid, proc.exited);
  await proc.exited;
  const result = localExit(proc.exitCode, proc.signalCode);
  log.info(`command (${describeCommand(got.command, log.verbose)}) ${describeExit(result)}`);
  return shellStatus(result);
}
