// Whatever is thrown while a frame is handled ends that connection with ERROR and a close; V2Session.run
// never rejects, so nothing a host does reaches the agent's process. Here our own code fails on purpose
// (a Conn whose write throws), with an in-memory connection.
import { expect, test } from "bun:test";
import { T, decodeJson, encodeJson } from "../../../src/protocol/v2/frame.ts";
import { FrameDecoder } from "../../../src/protocol/v2/decoder.ts";
import type { Conn } from "../../../src/transport/conn.ts";
import { ByteReader } from "../../../src/transport/reader.ts";
import { agentLog } from "../../../src/agent/log.ts";
import { V2Session } from "../../../src/agent/v2/server.ts";

function memoryConn(failWrites: number): { conn: Conn; sent: Uint8Array[]; closed: () => boolean } {
  const reader = new ByteReader();
  const sent: Uint8Array[] = [];
  let writes = 0;
  let isClosed = false;
  const conn: Conn = {
    reader,
    unsent: 0,
    drained: () => Promise.resolve(),
    write(d) {
      if (++writes <= failWrites) throw new Error("injected failure");
      sent.push(d);
      return Promise.resolve();
    },
    end() {},
    close() {
      isClosed = true;
      reader.end();
    },
    closed: Promise.resolve(),
  };
  return { conn, sent, closed: () => isClosed };
}

test("a failure of ours while answering HELLO: ERROR EINTERNAL, the connection closes, run() resolves", async () => {
  const { conn, sent, closed } = memoryConn(1);
  conn.reader.push(encodeJson(T.HELLO, 0, { versions: [2] }));
  const session = new V2Session(conn, agentLog(false, "test"));
  await session.run();
  expect(closed()).toBe(true);
  const frames = new FrameDecoder().push(new Uint8Array(Buffer.concat(sent)));
  expect(frames.map((f) => f.type)).toEqual([T.ERROR]);
  const body = decodeJson(frames[0]!) as { code: string; message: string };
  expect(body.code).toBe("EINTERNAL");
  expect(body.message).toContain("injected failure");
});

test("even when the ERROR itself cannot be written, run() resolves and the connection is closed", async () => {
  const { conn, closed } = memoryConn(Infinity);
  conn.reader.push(encodeJson(T.HELLO, 0, { versions: [2] }));
  await new V2Session(conn, agentLog(false, "test")).run();
  expect(closed()).toBe(true);
});
