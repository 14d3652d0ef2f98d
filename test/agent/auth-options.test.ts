// The authentication options of the agent's command line and listen mode's peer check. The AF_VSOCK
// accept path itself cannot be exercised on this machine (no vsock connect here), so the decision is a
// pure function, tested by table.
import { describe, expect, test } from "bun:test";
import { parseArgs } from "citty";
import { UsageError, splitArgv } from "../../src/common/argv.ts";
import { agentArgs, toConfig, type AgentConfig } from "../../src/agent/cli.ts";
import { refusePeer } from "../../src/agent/listen.ts";

const configOf = (argv: string[]): AgentConfig => toConfig(parseArgs(splitArgv(argv, agentArgs), agentArgs) as never);

describe("refusePeer", () => {
  const two = new Set([2]);
  test.each([
    [{ cid: 2, port: 1023 }, two, true, undefined],
    [{ cid: 2, port: 0 }, two, true, undefined],
    [{ cid: 2, port: 1024 }, two, true, "source port"],
    [{ cid: 2, port: 49152 }, two, true, "source port"],
    [{ cid: 2, port: 49152 }, two, false, undefined],
    [{ cid: 3, port: 100 }, two, true, "CID"],
    [{ cid: 3, port: 100 }, "any", true, undefined],
    [{ cid: 3, port: 4096 }, "any", true, "source port"],
  ] as const)("%o allowed=%o privileged=%p → %p", (peer, allowed, priv, why) => {
    const got = refusePeer(peer, allowed as Set<number> | "any", priv);
    if (why === undefined) expect(got).toBeUndefined();
    else expect(got).toContain(why);
  });
});

describe("options", () => {
  test("accepted", () => {
    expect(configOf(["--token-file", "/t"])).toMatchObject({ tokenFile: "/t", allowLegacy: false, privilegedPort: false });
    expect(configOf(["--token-file", "/t", "--allow-legacy", "persistent"])).toMatchObject({ tokenFile: "/t", allowLegacy: true, mode: "persistent" });
    expect(configOf(["--listen", "--privileged-port", ":1024"])).toMatchObject({ listen: true, privilegedPort: true });
    expect(configOf([]).tokenFile).toBeUndefined();
  });

  test.each([
    [["--allow-legacy"], /--allow-legacy only applies with --token-file/],
    [["--token-file", ""], /--token-file needs a PATH/],
    [["--privileged-port"], /--privileged-port only applies with --listen/],
    [["--listen", "--unix", "/s", "--privileged-port"], /--privileged-port only applies with --listen on AF_VSOCK/],
  ])("%p refused", (argv, msg) => {
    expect(() => configOf(argv as string[])).toThrow(UsageError);
    expect(() => configOf(argv as string[])).toThrow(msg);
  });
});
