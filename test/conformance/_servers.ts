// The peers the conformance test runs beside the agents: a loopback TCP echo server, a port nobody listens
// on, and a fake Firecracker vsock proxy (`CONNECT PORT\n` → `OK …\n`, then a relay to the agent's socket).
import net from "node:net";

/** Connects until the agent really listens: its socket file can appear a moment before listen(). */
export async function waitListening(path: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const err = await new Promise<Error | null>((resolve) => {
      const s = net.connect(path, () => {
        s.destroy();
        resolve(null);
      });
      s.on("error", resolve);
    });
    if (!err) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${path} after ${ms} ms: ${err.message}`);
    await Bun.sleep(20);
  }
}

/** Echoes every byte back and half-closes once the client has. */
export function echoServer(): { port: number; close: () => void } {
  interface Echo { queue: Uint8Array[]; ended: boolean }
  // Writes what the socket takes; the rest waits for drain.
  const flush = (s: Bun.Socket<Echo>) => {
    const q = s.data.queue;
    while (q.length) {
      const d = q[0]!;
      const n = s.write(d);
      if (n < d.length) {
        q[0] = d.subarray(n);
        return;
      }
      q.shift();
    }
    if (s.data.ended) s.end();
  };
  const server = Bun.listen<Echo>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = { queue: [], ended: false };
      },
      data(s, d) {
        s.data.queue.push(d);
        flush(s);
      },
      drain: flush,
      end(s) {
        s.data.ended = true;
        flush(s);
      },
    },
  });
  return { port: server.port, close: () => server.stop(true) };
}

/** A loopback port that refuses: bound once to pick it, then closed. */
export async function refusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Firecracker's host side of guest vsock: one line `CONNECT PORT\n`, `OK <host port>\n`, then bytes both ways. */
export function fcProxy(path: string, agentPath: string): { close: () => void } {
  const server = net.createServer((client) => {
    let head = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const nl = head.indexOf(10);
      if (nl < 0) {
        if (head.length > 64) client.destroy();
        return;
      }
      client.off("data", onData);
      client.pause();
      if (!/^CONNECT \d+$/.test(head.subarray(0, nl).toString())) return void client.destroy();
      const rest = head.subarray(nl + 1);
      const agent = net.connect(agentPath, () => {
        client.write("OK 1073741824\n");
        if (rest.length) agent.write(rest);
        client.pipe(agent);
        agent.pipe(client);
        client.resume();
      });
      agent.on("error", () => client.destroy());
      client.on("error", () => agent.destroy());
      client.on("close", () => agent.destroy());
      agent.on("close", () => client.destroy());
    };
    client.on("data", onData);
  });
  server.listen(path);
  return { close: () => server.close() };
}
