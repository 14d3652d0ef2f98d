// Kernel AF_VSOCK, listen side only. This machine is itself a VM: tests never connect() an AF_VSOCK
// socket (no vsock: address is ever dialed here); socket(), bind() and listen() are harmless.
import { expect, test } from "bun:test";
import { listen, ListenerClosedError } from "../../src/host/index.ts";

async function vsockAvailable(): Promise<string | null> {
  try {
    const l = await listen(`vsock-listen:${40000 + Math.floor(Math.random() * 20000)}`);
    await l.close();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

const unavailable = await vsockAvailable();
if (unavailable) console.error(`skipping AF_VSOCK listener tests: ${unavailable}`);

test.skipIf(!!unavailable)("vsock-listen binds, refuses a second bind of the port, and closes cleanly", async () => {
  const port = 40000 + Math.floor(Math.random() * 20000);
  const l = await listen(`vsock-listen:${port}`);
  expect(l.address).toBe(`vsock-listen:${port}`);
  const pending = l.accept().catch((e) => e);
  const again = await listen(`vsock-listen:${port}`).catch((e) => e);
  expect(again.message).toBe(`listen vsock-listen:${port}: bind: EADDRINUSE`);
  await l.close();
  expect(await pending).toBeInstanceOf(ListenerClosedError);
  // The port is free again once the listener is closed.
  const l2 = await listen(`vsock-listen:-1:${port}`);
  await l2.close();
});
