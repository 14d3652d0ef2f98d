// A received payload stays a view of the socket's read buffer only when it is at least a quarter of it
// (ownPayload); a guest must not turn small payloads into whole read buffers held. Here every 64 KiB for
// an execution that is read comes with 64 bytes for one that never is, or is read with every chunk kept
// (as run() collects output): as views, the second's window of 256 KiB (4,096 frames) would pin every read
// buffer of the 256 MiB the first one carries. The host, in its own process, must stay far below that.
// Without the copy the host grows by 290 MB here.
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { DEFAULT_WINDOW, T, decodeWindow, encodeFrame, encodeJson } from "../../src/protocol/index.ts";
import { hostileAgents, writeFrame } from "./_hostile.ts";
import { tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-views-");
afterAll(() => dir.remove());
const agent = hostileAgents(dir);

/** Two executions from a guest that packs them into the same reads; the host reads one and stalls or keeps the other. */
async function twoStreams(mode: "stall" | "keep"): Promise<void> {
  const SMALL = 64;
  const ROUNDS = DEFAULT_WINDOW / SMALL; // the stalled execution's whole window, 4,096 frames
  const big = (id: number) => encodeFrame(T.STDOUT, id, new Uint8Array(64 * 1024).fill(0x41));
  const small = (id: number) => encodeFrame(T.STDOUT, id, new Uint8Array(SMALL).fill(0x42));
  const ids: number[] = [];
  let credit = 0;
  let waiter: (() => void) | undefined;
  const a = await agent({
    onFrame: (f, sock) => {
      if (f.type === T.WINDOW && f.id === ids[0]) {
        credit += decodeWindow(f);
        waiter?.();
      }
      if (f.type !== T.EXEC) return;
      ids.push(f.id);
      if (ids.length < 2) return;
      const [read, stalled] = ids as [number, number];
      credit = DEFAULT_WINDOW;
      void (async () => {
        for (let i = 0; i < ROUNDS; i++) {
          while (credit < 64 * 1024) await new Promise<void>((r) => (waiter = r));
          credit -= 64 * 1024;
          // One write: the small frame lands in the same read buffer as the big one.
          if (!(await writeFrame(sock, Buffer.concat([big(read), small(stalled)])))) return;
        }
        await writeFrame(sock, encodeJson(T.EXIT, read, { status: "exited", code: 0 }));
      })();
    },
  });
  const host = Bun.spawn(["bun", join(import.meta.dir, "_views-host.ts"), a.path, mode], { stdout: "pipe", stderr: "inherit", timeout: 60_000, killSignal: "SIGKILL" });
  const out = await new Response(host.stdout).text();
  await host.exited;
  const { got, grew, kept } = JSON.parse(out) as { got: number; grew: number; kept: number };
  expect(got).toBe(ROUNDS * 64 * 1024);
  expect(kept).toBe(mode === "keep" ? ROUNDS * SMALL : 0);
  // 256 KiB queued or kept for the second execution. As views, its chunks kept every read buffer alive:
  // 290 MB more, measured. What remains is the allocator's (about 20 MB after 256 MiB passed through).
  expect(grew).toBeLessThan(48 * 1024 * 1024);
}

test("a stalled reader holds its queued bytes, not the read buffers they arrived in", () => twoStreams("stall"), 90_000);
test("a reader that keeps its chunks holds them, not the read buffers they arrived in", () => twoStreams("keep"), 90_000);
