// Persistent mode: length-prefixed commands, run one at a time in order until the host closes.
import { readFrame } from "../protocol/legacy.ts";
import { cutAtNul } from "../protocol/legacy.ts";
import type { ByteReader } from "../transport/reader.ts";
import { EXIT } from "./limits.ts";
import { describeCommand, type Log } from "./log.ts";
import { describeExit, localExit } from "../common/exit.ts";
import { tracked } from "./shutdown.ts";
import { containment } from "./v2/contain.ts";

export interface PersistentOptions {
  log: Log;
}

/** Serves frames until EOF; returns the agent's exit code. Commands inherit the agent's stdio. */
export async function runPersistent(reader: ByteReader, { log }: PersistentOptions): Promise<number> {
  for (let n = 1; ; n++) {
    const frame = await readFrame(reader);
    switch (frame.kind) {
      case "eof":
        log.debug(`host closed the connection after ${n - 1} frames`);
        return EXIT.ok;
      case "cut":
        log.error(`frame ${n}: connection closed after ${frame.got} of ${frame.wanted} bytes; nothing was run`);
        return EXIT.input;
      case "empty":
        log.debug(`frame ${n}: empty, nothing to run`);
        continue;
      case "too-long":
        log.error(`frame ${n}: command is ${frame.length} bytes, over the 2048-byte limit; dropped, nothing was run`);
        continue;
      case "command": {
        const command = cutAtNul(frame.command);
        if (command.byteLength === 0) {
          log.debug(`frame ${n}: empty command, nothing to run`);
          continue;
        }
        const status = await runShell(command);
        log.info(`command ${n} (${describeCommand(command, log.verbose)}) ${status}`);
      }
    }
  }
}

async function runShell(command: Uint8Array): Promise<string> {
  try {
    // detached: its own process group, so that SIGTERM handling (shutdown.ts) can kill the command and
    // everything it started; otherwise they would outlive the agent (past switch_root, in an initrd).
    const proc = Bun.spawn(["/bin/sh", "-c", new TextDecoder().decode(command)], { stdio: ["inherit", "inherit", "inherit"], detached: true });
    // The runtime reaps it, not the agent's orphan tracking (v2/track.ts).
    containment().tracking?.spawned(proc.pid, proc.exited);
    const running = {
      idle: () => proc.exited.then(() => {}),
      abortAll: () => {
        try {
          process.kill(-proc.pid, "SIGKILL");
        } catch {
          // Gone already.
        }
      },
    };
    await tracked(running, () => proc.exited);
    return describeExit(localExit(proc.exitCode, proc.signalCode));
  } catch (e) {
    return `failed to start: ${(e as Error).message}`;
  }
}
