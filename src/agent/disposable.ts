// Disposable mode: one command, then this process becomes `/bin/sh -c COMMAND`.
import { execve, resetSignals } from "../sys/exec.ts";
import { setCloexec } from "../sys/socket.ts";
import { readDisposable } from "../protocol/legacy.ts";
import type { ByteReader } from "../transport/reader.ts";
import { EXIT } from "./limits.ts";
import { describeCommand, type Log } from "./log.ts";

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
