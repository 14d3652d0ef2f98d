// SIGTERM (systemd stop, the initrd's cleanup hook): running work finishes and its EXIT reaches the host
// within a short grace; then the agent exits 143. Found in a guest test: a command that itself caused the
// stop (creating the initrd's release file) lost its EXIT frame when SIGTERM killed the agent at once.
import { afterEach, expect, test } from "bun:test";
import { tempDir, type TempDir } from "../../helpers/tmp.ts";
import { listeningAgent, type Agent } from "./_agent.ts";
import { V2Host } from "./_host.ts";

let dir: TempDir | undefined;
let agent: Agent | undefined;
let host: V2Host | undefined;

afterEach(async () => {
  host?.close();
  await agent?.stop();
  dir?.remove();
});

async function start(prefix: string): Promise<void> {
  dir = tempDir(prefix);
  agent = await listeningAgent(dir.file("agent.sock"));
  host = await V2Host.connect(dir.file("agent.sock"));
  await host.hello();
}

test("a running execution finishes and its EXIT is sent before the agent exits 143", async () => {
  await start("vge-v2term-");
  const running = host!.run(1, { shell: "sleep 0.4; echo finished" });
  await Bun.sleep(100); // the process runs
  const t0 = performance.now();
  agent!.proc.kill("SIGTERM");
  const r = await running;
  expect(r.exit).toEqual({ status: "exited", code: 0 });
  expect(r.stdout).toBe("finished\n");
  expect(await agent!.exited).toBe(143);
  expect(performance.now() - t0).toBeLessThan(1400);
  expect(agent!.log()).toContain("SIGTERM: letting 1 session(s) finish");
});

test("once the last EXIT is out, the agent half-closes: the host sees EOF at once, closes, and the agent exits 143", async () => {
  await start("vge-v2term4-");
  const running = host!.run(1, { shell: "sleep 0.3" });
  await Bun.sleep(100);
  agent!.proc.kill("SIGTERM");
  expect((await running).exit).toEqual({ status: "exited", code: 0 });
  const t0 = performance.now();
  await host!.closed;
  const eof = performance.now() - t0;
  // Without the FIN the host heard nothing until the agent gave up lingering (500 ms) and exited.
  expect(eof).toBeLessThan(250);
  host!.close();
  expect(await agent!.exited).toBe(143);
  expect(performance.now() - t0).toBeLessThan(400);
});

test("work that outlasts the grace is killed, group and all: the agent exits 143 after about 1.5 s", async () => {
  await start("vge-v2term2-");
  void host!.run(1, { shell: "sleep 31.25 & sleep 31.25" }).catch(() => {});
  await Bun.sleep(100);
  const sleepers = () => Bun.spawnSync(["pgrep", "-f", "^sleep 31.25$"]).stdout.toString().trim().split("\n").filter(Boolean);
  expect(sleepers().length).toBe(2);
  const t0 = performance.now();
  agent!.proc.kill("SIGTERM");
  expect(await agent!.exited).toBe(143);
  const ms = performance.now() - t0;
  expect(ms).toBeGreaterThan(1300);
  expect(ms).toBeLessThan(3000);
  await Bun.sleep(100);
  expect(sleepers()).toEqual([]);
});

test("with nothing running, SIGTERM ends the agent at once with 143", async () => {
  dir = tempDir("vge-v2term3-");
  agent = await listeningAgent(dir.file("agent.sock"));
  const t0 = performance.now();
  agent.proc.kill("SIGTERM");
  expect(await agent.exited).toBe(143);
  expect(performance.now() - t0).toBeLessThan(1000);
});
