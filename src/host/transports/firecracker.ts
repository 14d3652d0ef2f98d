// The hybrid-vsock handshake of Firecracker, Cloud Hypervisor and vhost-device-vsock: connect to the VMM's
// `uds_path`, write `CONNECT <port>\n`, read `OK <host_port>\n`; from then on the stream is the guest's.
import type { Conn } from "../../transport/stream.ts";
import type { ByteReader } from "../../transport/reader.ts";
import { GuestError } from "../errors.ts";
import { connectUnix } from "./unix.ts";
import type { DialOptions } from "./types.ts";

const MAX_LINE = 64;

/** One line, byte by byte, so that nothing after the newline (the guest's bytes) is consumed. */
async function readLine(reader: ByteReader): Promise<string | null> {
  const bytes: number[] = [];
  while (bytes.length < MAX_LINE) {
    const b = await reader.readExact(1);
    if (b === null) return bytes.length ? String.fromCharCode(...bytes) : null;
    if (b[0] === 0x0a) return String.fromCharCode(...bytes);
    bytes.push(b[0]!);
  }
  return String.fromCharCode(...bytes);
}

export async function fcHandshake(conn: Conn, port: number, where: string, timeoutMs = 10_000): Promise<void> {
  await conn.write(new TextEncoder().encode(`CONNECT ${port}\n`));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GuestError("EHANDSHAKE", `${where}: no answer to CONNECT ${port} within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  let line: string | null;
  try {
    line = await Promise.race([readLine(conn.reader), timeout]);
  } catch (e) {
    if (e instanceof GuestError) throw e;
    line = null;
  } finally {
    clearTimeout(timer);
  }
  if (line === null) throw new GuestError("EHANDSHAKE", `${where}: the VMM closed the connection after CONNECT ${port} (is the agent listening on guest port ${port}?)`);
  if (!/^OK \d+$/.test(line)) throw new GuestError("EHANDSHAKE", `${where}: expected "OK <port>" after CONNECT ${port}, got ${JSON.stringify(line)}`);
}

export async function connectFirecracker(path: string, port: number, opts: DialOptions = {}): Promise<Conn> {
  const conn = await connectUnix(path, opts);
  try {
    await fcHandshake(conn, port, `fc:${path}:${port}`, opts.timeoutMs ?? 10_000);
    return conn;
  } catch (e) {
    conn.close();
    throw e;
  }
}
