// Detached-job steps for the agent tests that speak v2 through V2Host: the agent and hosts they set up, LIST
// across its pages, ATTACH with the job's stdin credit (PROTOCOL.md §5.1), and the text a follower received.
import { afterEach } from "bun:test";
import { T } from "../../../src/protocol/v2/frame.ts";
import { tempDir, type TempDir } from "../../helpers/tmp.ts";
import { listeningAgent, type Agent } from "./_agent.ts";
import { V2Host, json, type Json } from "./_host.ts";

/** A compiled agent in a temp dir and the hosts connected to it; all of it gone after each test of the file. */
export class AgentFixture {
  dir: TempDir | undefined;
  agent: Agent | undefined;
  readonly hosts: V2Host[] = [];
  readonly cleanups: (() => void)[] = [];

  constructor() {
    afterEach(() => this.reset());
  }

  /** Starts the agent listening on a socket in a new temp dir; returns the socket's path. */
  async listening(prefix: string, extra: string[] = []): Promise<string> {
    this.dir = tempDir(prefix);
    const path = this.dir.file("agent.sock");
    this.agent = await listeningAgent(path, 120_000, extra);
    return path;
  }

  /** A host connected to `path` that has said hello. */
  async host(path: string): Promise<V2Host> {
    const h = await V2Host.connect(path);
    this.hosts.push(h);
    await h.hello();
    return h;
  }

  private async reset(): Promise<void> {
    for (const h of this.hosts.splice(0)) h.close();
    for (const c of this.cleanups.splice(0)) c();
    await this.agent?.stop();
    this.agent = undefined;
    this.dir?.remove();
    this.dir = undefined;
  }
}

export const WINDOW = 262144;
const text = new TextDecoder();

/** STDOUT bytes of `id` as text. */
export const stdout = (h: V2Host, id: number) => text.decode(Buffer.concat(h.of(id).filter((f) => f.type === T.STDOUT).map((f) => f.payload)));

/** What `seq 1 n` prints. */
export const seq = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join("");

/** LIST, every LISTING page of the answer. */
export async function list(h: V2Host, id: number): Promise<Json[]> {
  await h.sendJson(T.LIST, id, {});
  const jobs: Json[] = [];
  for (let seen = 0; ; ) {
    const page = await h.until((f) => f.id === id && f.type === T.LISTING && h.of(id).filter((g) => g.type === T.LISTING).indexOf(f) === seen, 5000, "LISTING");
    seen++;
    jobs.push(...json(page).jobs);
    if (!json(page).more) return jobs;
  }
}

/**
 * ATTACH, and the answer. An ATTACHED's `stdin` is the credit this follower starts with; the helper's count
 * assumes a whole window, so the difference is counted as spent (an agent without the field: a whole window).
 */
export async function attach(h: V2Host, id: number, body: Json): Promise<Json> {
  await h.sendJson(T.ATTACH, id, body);
  const f = await h.until((f) => f.id === id && (f.type === T.ATTACHED || f.type === T.DETACHED), 5000, "ATTACHED");
  const a: Json = { type: f.type, ...json(f) };
  if (a.type === T.ATTACHED) h.spend(id, WINDOW - (a.stdin ?? WINDOW));
  return a;
}
