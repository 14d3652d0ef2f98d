// The original-format helpers half-close their side to end a command. Over kernel AF_VSOCK the Conn is an
// fd made by the FFI layer and adopted into Bun; that path cannot be dialled here, so the same code runs
// on an FFI-made AF_UNIX fd adopted the same way (adoptFd), against a hand-made disposable agent.
import { afterAll, expect, test } from "bun:test";
import { createServer, type Socket } from "node:net";
import { sendDisposable, sendPersistent } from "../../src/host/index.ts";
import { unixConnect } from "../../src/sys/vsock.ts";
import { adoptFd } from "../../src/transport/conn.ts";
import { tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-hc-");
afterAll(() => dir.remove());

/** Reads until EOF, then "runs the command" for `runMs` and closes: what a disposable agent does. */
async function fakeDisposable(path: string, runMs: number) {
  let got = "";
  let eofAt = 0;
  let closedAt = 0;
  const sockets: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on("data", (d) => (got += d.toString("latin1")));
    s.on("end", () => {
      eofAt = performance.now();
      setTimeout(() => {
        closedAt = performance.now();
        s.end();
      }, runMs);
    });
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    got: () => got,
    eofAt: () => eofAt,
    closedAt: () => closedAt,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

test("sendDisposable over an FFI-made fd half-closes and waits for the command's end", async () => {
  const path = dir.file("d.sock");
  const agent = await fakeDisposable(path, 500);
  try {
    const conn = await adoptFd(await unixConnect(path));
    const t0 = performance.now();
    await sendDisposable(conn, "sleep 0.5; echo done", { timeoutMs: 5000 });
    const elapsed = performance.now() - t0;
    expect(agent.got()).toBe("sleep 0.5; echo done");
    // The agent saw EOF (our FIN), and we returned only once it closed, after its 500 ms of "work".
    expect(agent.eofAt()).toBeGreaterThan(0);
    expect(agent.closedAt()).toBeGreaterThan(0);
    expect(elapsed).toBeGreaterThan(450);
    expect(elapsed).toBeLessThan(4000);
  } finally {
    agent.close();
  }
}, 15_000);

test("sendPersistent over an FFI-made fd: every frame arrives before the half-close", async () => {
  const path = dir.file("p.sock");
  const agent = await fakeDisposable(path, 300);
  try {
    const conn = await adoptFd(await unixConnect(path));
    const t0 = performance.now();
    // Larger than a socket buffer, so some of it is still queued in user space when end() is called.
    const cmds = Array.from({ length: 400 }, (_, i) => `echo ${i} ${"x".repeat(2000)}`);
    await sendPersistent(conn, cmds, { timeoutMs: 5000 });
    expect(performance.now() - t0).toBeGreaterThan(250);
    const expected = cmds.reduce((n, c) => n + 2 + c.length, 0);
    expect(agent.got().length).toBe(expected);
  } finally {
    agent.close();
  }
}, 15_000);
