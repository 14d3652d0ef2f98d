// OpenSSH as a peer: a private sshd on 127.0.0.1, a free high port, with its own config, host key and
// client key in the bench's temp folder (key auth only), started in the foreground and ended by PID.
// Commands run with a fresh `ssh` connection each time, or through a ControlMaster kept for the run.
import type { Subprocess } from "bun";
import { chmodSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { run, start, stop } from "../_procs.ts";

export const SSHD = "/usr/sbin/sshd";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Sshd {
  port: number;
  /** ssh arguments up to and including the destination, for a fresh connection. */
  fresh: string[];
  /** The same through the ControlMaster (startMaster first). */
  viaMaster: string[];
  startMaster(): Promise<void>;
  close(): Promise<void>;
}

export async function startSshd(dir: string, lifeMs: number): Promise<Sshd> {
  const hostKey = join(dir, "ssh_host_ed25519_key");
  const userKey = join(dir, "id_ed25519");
  await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey], 10_000);
  await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", userKey], 10_000);
  const auth = join(dir, "authorized_keys");
  writeFileSync(auth, await Bun.file(`${userKey}.pub`).text());
  chmodSync(auth, 0o600);
  const port = await freePort();
  const config = join(dir, "sshd_config");
  writeFileSync(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${auth}`,
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "PermitRootLogin prohibit-password",
      "UsePAM no",
      "StrictModes no",
      "UseDNS no",
      "PrintMotd no",
      "Subsystem sftp internal-sftp",
      "",
    ].join("\n"),
  );
  // sshd wants its privilege-separation folder even in the foreground.
  await run(["mkdir", "-p", "/run/sshd"], 5000);
  const sshd = start([SSHD, "-D", "-e", "-f", config], { timeoutMs: lifeMs, stderr: "ignore" });
  const user = (await run(["id", "-un"], 5000)).trim();
  const common = ["-F", "/dev/null", "-i", userKey, "-p", String(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"];
  const dest = `${user}@127.0.0.1`;
  const ctl = join(dir, "cm.sock");
  let master: Subprocess | undefined;
  // sshd takes a moment to listen: try a command until it answers.
  for (let t0 = performance.now(); ; ) {
    try {
      await run(["ssh", ...common, dest, "true"], 10_000);
      break;
    } catch (e) {
      if (performance.now() - t0 > 10_000) throw e;
      await Bun.sleep(50);
    }
  }
  return {
    port,
    fresh: ["ssh", ...common, dest],
    viaMaster: ["ssh", ...common, "-o", "ControlMaster=no", "-S", ctl, dest],
    async startMaster() {
      master = start(["ssh", ...common, "-M", "-N", "-S", ctl, dest], { timeoutMs: lifeMs });
      for (let t0 = performance.now(); ; await Bun.sleep(20)) {
        try {
          await run(["ssh", ...common, "-S", ctl, "-O", "check", dest], 5000);
          return;
        } catch (e) {
          if (performance.now() - t0 > 10_000) throw e;
        }
      }
    },
    async close() {
      if (master) await stop(master);
      await stop(sshd);
    },
  };
}
