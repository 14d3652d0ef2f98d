// The set-up the v2 test files share: one listening agent per file, and one host connected to it and past
// HELLO/WELCOME. Call v2Fixture at module scope: it registers that file's beforeAll and afterAll.
import { afterAll, beforeAll } from "bun:test";
import { tempDir, type TempDir } from "../../helpers/tmp.ts";
import { listeningAgent, type Agent } from "./_agent.ts";
import { V2Host } from "./_host.ts";

export interface V2Fixture {
  /** This file's temporary directory; the agent's socket is in it. */
  readonly dir: TempDir;
  readonly agent: Agent;
  /** Connected and greeted: WELCOME has come. */
  readonly host: V2Host;
  /** The agent's socket, for further connections. */
  readonly sock: string;
  /** A fresh execution id for `host`: 1, 2, 3, ... */
  id(): number;
}

export function v2Fixture(prefix: string): V2Fixture {
  let dir: TempDir | undefined;
  let agent: Agent | undefined;
  let host: V2Host | undefined;
  let nextId = 1;

  beforeAll(async () => {
    dir = tempDir(prefix);
    agent = await listeningAgent(dir.file("agent.sock"));
    host = await V2Host.connect(dir.file("agent.sock"));
    await host.hello();
  }, 60_000); // may build the agent first

  afterAll(async () => {
    host?.close();
    await agent?.stop();
    dir?.remove();
  });

  const ready = <V>(v: V | undefined, what: string): V => {
    if (v === undefined) throw new Error(`v2Fixture: ${what} is set up in beforeAll; use it inside a hook or test`);
    return v;
  };
  return {
    get dir() {
      return ready(dir, "dir");
    },
    get agent() {
      return ready(agent, "agent");
    },
    get host() {
      return ready(host, "host");
    },
    get sock() {
      return ready(dir, "dir").file("agent.sock");
    },
    id: () => nextId++,
  };
}
