// The set-up every test file of the compiled agent shares (test/agent/binary_*.test.ts).
import { afterAll, beforeAll, setDefaultTimeout } from "bun:test";
import { stopAgents } from "./agent.ts";
import { agentBinary } from "./build.ts";
import { tempDir, type TempDir } from "./tmp.ts";

/**
 * Call once, at module scope. Builds the agent before the first test; afterwards kills any agent still
 * running and removes the file's temporary directory, which it returns.
 */
export function binaryTests(): TempDir {
  const dir = tempDir();
  afterAll(() => {
    stopAgents();
    dir.remove();
  });
  beforeAll(() => void agentBinary(), 120_000);
  // Each test spawns processes and waits on real time: room for a loaded machine, still bounded.
  setDefaultTimeout(20_000);
  return dir;
}
