// v2 executions against the compiled agent in listen mode: hello facts, argv and shell, exit results,
// start failures, identity, environment, stdin and merged output.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { hostname, release } from "node:os";
import { v2Fixture } from "./_fixture.ts";
import { T, V2Host, json } from "./_host.ts";
import { encodeFrame, encodeJson } from "../../../src/protocol/v2/frame.ts";

const fx = v2Fixture("vge-v2x-");

test("WELCOME states version, capabilities and facts of this machine", () => {
  const w = fx.host.welcome!;
  expect(w.version).toBe(2);
  expect(w.agent).toBe(JSON.parse(readFileSync(`${import.meta.dir}/../../../package.json`, "utf8")).version);
  expect(w.capabilities).toEqual(["exec", "pty", "signal", "timeout", "files", "ping", "flow", "dirs", "detach", "tcp"]);
  expect(w.hostname).toBe(hostname());
  expect(w.kernel).toBe(release());
  expect(w.arch).toBe(process.arch === "arm64" ? "arm64" : "x64");
  expect(w.initrd).toBe(false);
  expect(w.pid).toBe(fx.agent.pid);
  expect(w.maxPayload).toBe(262144);
  expect(w.window).toBe(262144);
  // WELCOME is the first frame, and id 0.
  expect(fx.host.frames[0]!.type).toBe(T.WELCOME);
  expect(fx.host.frames[0]!.id).toBe(0);
});

test("the host may send frames right after HELLO, in the same write: WELCOME still comes first", async () => {
  const h = await V2Host.connect(fx.sock);
  const all = Buffer.concat([
    Buffer.from([0xff, 0xff, 0x56, 0x47, 0x45, 0x32, 0x0d, 0x0a]),
    encodeJson(T.HELLO, 0, { versions: [2] }),
    encodeJson(T.EXEC, 1, { argv: ["echo", "eager"] }),
    encodeFrame(T.PING, 2, new Uint8Array([1, 2, 3])),
  ]);
  await h.write(new Uint8Array(all));
  const r = await h.exit(1);
  expect(r.stdout).toBe("eager\n");
  await h.until((f) => f.type === T.PONG && f.id === 2);
  expect(h.frames[0]!.type).toBe(T.WELCOME);
  h.close();
});

test("a HELLO without version 2 gets ERROR EVERSION and a closed connection", async () => {
  const h = await V2Host.connect(fx.sock);
  await h.write(new Uint8Array([0xff, 0xff, 0x56, 0x47, 0x45, 0x32, 0x0d, 0x0a]));
  await h.sendJson(T.HELLO, 0, { versions: [1, 3] });
  const err = await h.until((f) => f.type === T.ERROR);
  expect(json(err).code).toBe("EVERSION");
  expect(await h.closedWithin(2000)).toBe(true);
});

describe("exec", () => {
  test("argv: stdout, stderr and the exit code, EXIT last after all output", async () => {
    const n = fx.id();
    const r = await fx.host.run(n, { argv: ["sh", "-c", "echo out; echo err >&2; exit 3"] });
    expect(r.stdout).toBe("out\n");
    expect(r.stderr).toBe("err\n");
    expect(r.exit).toEqual({ status: "exited", code: 3 });
    expect(r.frames[0]!.type).toBe(T.STARTED);
    expect(r.started!.pid).toBeGreaterThan(1);
    expect(r.frames.at(-1)!.type).toBe(T.EXIT);
    expect(r.frames.filter((f) => f.type === T.EXIT)).toHaveLength(1);
  });

  test("shell: /bin/sh -c, with pipes and quoting", async () => {
    const r = await fx.host.run(fx.id(), { shell: "printf '%s|' a 'b c' | tr a-z A-Z; echo; exit 0" });
    expect(r.stdout).toBe("A|B C|\n");
    expect(r.exit).toEqual({ status: "exited", code: 0 });
  });

  test("argv is passed as is, without a shell", async () => {
    const r = await fx.host.run(fx.id(), { argv: ["printf", "%s\\n", "$HOME", "a b", "*"] });
    expect(r.stdout).toBe("$HOME\na b\n*\n");
  });

  test("EXIT comes after every byte of a larger output, in order", async () => {
    const n = fx.id();
    const r = await fx.host.run(n, { shell: "seq 1 200000; seq 1 1000 >&2" });
    const expected = Array.from({ length: 200000 }, (_, i) => `${i + 1}\n`).join("");
    expect(r.stdout).toBe(expected);
    expect(r.stderr).toBe(Array.from({ length: 1000 }, (_, i) => `${i + 1}\n`).join(""));
    expect(r.frames.at(-1)!.type).toBe(T.EXIT);
    for (const f of r.frames) expect(f.payload.byteLength).toBeLessThanOrEqual(65536);
  });

  test("output a background child writes shortly after the shell has exited still comes before EXIT", async () => {
    const r = await fx.host.run(fx.id(), { shell: "(sleep 0.2; echo late) & echo early" });
    expect(r.stdout).toBe("early\nlate\n");
    expect(r.frames.at(-1)!.type).toBe(T.EXIT);
  });

  test("exit results: signaled", async () => {
    const r = await fx.host.run(fx.id(), { shell: "kill -TERM $$" });
    expect(r.exit).toEqual({ status: "signaled", signal: "SIGTERM", signo: 15 });
  });

  test("a missing program: EXIT error ENOENT at once, no STARTED", async () => {
    const n = fx.id();
    const t0 = performance.now();
    const r = await fx.host.run(n, { argv: ["vge-no-such-program"] });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(r.exit.status).toBe("error");
    expect(r.exit).toMatchObject({ errno: "ENOENT" });
    expect(r.frames.map((f) => f.type)).toEqual([T.EXIT]);
  });

  test("a bad cwd: EXIT error, no STARTED", async () => {
    const r = await fx.host.run(fx.id(), { argv: ["pwd"], cwd: fx.dir.file("no-such-dir") });
    expect(r.exit.status).toBe("error");
    expect(r.exit).toMatchObject({ errno: "ENOENT" });
    expect(r.started).toBeUndefined();
  });

  test("an unknown user: EXIT error, no STARTED", async () => {
    const r = await fx.host.run(fx.id(), { argv: ["id"], user: "vge-no-such-user" });
    expect(r.exit).toMatchObject({ status: "error", errno: "ENOENT" });
    expect(r.started).toBeUndefined();
  });

  test("cwd is applied", async () => {
    const r = await fx.host.run(fx.id(), { argv: ["pwd"], cwd: fx.dir.path });
    expect(r.stdout).toBe(`${fx.dir.path}\n`);
  });

  test.skipIf(process.getuid?.() !== 0)("user nobody: uid, gid, HOME and USER of that account", async () => {
    const nobody = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("nobody:"))!.split(":");
    const r = await fx.host.run(fx.id(), { shell: 'id -u; id -g; echo "$HOME $USER"', user: "nobody" });
    expect(r.stdout).toBe(`${nobody[2]}\n${nobody[3]}\n${nobody[5]} nobody\n`);
    const byUid = await fx.host.run(fx.id(), { argv: ["id", "-u"], user: nobody[2]! });
    expect(byUid.stdout).toBe(`${nobody[2]}\n`);
    const explicit = await fx.host.run(fx.id(), { shell: "id -u; id -g", uid: 4321, gid: 8765 });
    expect(explicit.stdout).toBe("4321\n8765\n");
  });

  // Bun.spawn sets uid and gid but has no setgroups: the documented behaviour (PROTOCOL.md §5) is the
  // primary group alone, never the agent's own (root's) supplementary groups.
  test.skipIf(process.getuid?.() !== 0)("user: the primary group only, none of the agent's groups", async () => {
    const nobody = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("nobody:"))!.split(":");
    const r = await fx.host.run(fx.id(), { argv: ["id", "-G"], user: "nobody" });
    expect(r.stdout).toBe(`${nobody[3]}\n`);
  });

  test("env: no changes asked for, the agent's own environment is passed on as it is (spawn.ts: inherited)", async () => {
    const r = await fx.host.run(fx.id(), { shell: 'echo "${VGE_TEST_INHERITED-unset}|${HOME-unset}"' });
    expect(r.stdout).toBe("yes|/root\n");
    const empty = await fx.host.run(fx.id(), { shell: 'echo "${VGE_TEST_INHERITED-unset}"', env: {} });
    expect(empty.stdout).toBe("yes\n");
  });

  test("env: set over the agent's environment, and remove", async () => {
    const r = await fx.host.run(fx.id(), { shell: 'echo "$VGE_A|${VGE_TEST_INHERITED-unset}|${HOME-unset}"', env: { VGE_A: "x y=z", HOME: null } });
    expect(r.stdout).toBe("x y=z|yes|unset\n");
  });

  test("clearEnv: only what the request sets", async () => {
    const r = await fx.host.run(fx.id(), { argv: ["/usr/bin/env"], clearEnv: true, env: { ONLY: "1", GONE: null } });
    expect(r.stdout).toBe("ONLY=1\n");
  });

  test("stdin pipe with half-close: wc -c counts every byte", async () => {
    const data = new Uint8Array(700_000).map((_, i) => (i * 7) & 0xff);
    const r = await fx.host.run(fx.id(), { argv: ["wc", "-c"] }, { stdin: data, eof: true });
    expect(r.stdout.trim()).toBe("700000");
    expect(r.exit).toEqual({ status: "exited", code: 0 });
  });

  test("stdin pipe: binary bytes arrive unchanged", async () => {
    const data = new Uint8Array(300_000).map(() => Math.floor(Math.random() * 256));
    const want = new Bun.CryptoHasher("sha256").update(data).digest("hex");
    const r = await fx.host.run(fx.id(), { shell: "sha256sum | cut -d' ' -f1" }, { stdin: data, eof: true });
    expect(r.stdout.trim()).toBe(want);
  });

  test("stdin closed: the process reads EOF at once", async () => {
    const r = await fx.host.run(fx.id(), { shell: "cat; echo done; ls -l /proc/self/fd/0", stdin: "closed" }, { timeoutMs: 5000 });
    expect(r.stdout).toStartWith("done\n");
    expect(r.stdout).toContain("/dev/null");
  });

  test("merge: stderr and stdout in one ordered STDOUT stream", async () => {
    const r = await fx.host.run(fx.id(), { shell: "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done", merge: true });
    expect(r.stdout).toBe([1, 2, 3, 4, 5].map((i) => `out${i}\nerr${i}\n`).join(""));
    expect(r.frames.some((f) => f.type === T.STDERR)).toBe(false);
  });

  test("executions on one connection run concurrently", async () => {
    const ids = [fx.id(), fx.id(), fx.id(), fx.id()];
    const t0 = performance.now();
    await Promise.all(ids.map((n) => fx.host.sendJson(T.EXEC, n, { shell: `sleep 0.5; echo ${n}` })));
    const rs = await Promise.all(ids.map((n) => fx.host.exit(n)));
    expect(performance.now() - t0).toBeLessThan(1800);
    expect(rs.map((r) => r.stdout)).toEqual(ids.map((n) => `${n}\n`));
  });

  test("an id may be used again once its EXIT has come", async () => {
    const n = fx.id();
    expect((await fx.host.run(n, { argv: ["echo", "first"] })).stdout).toBe("first\n");
    const before = fx.host.of(n).length;
    await fx.host.sendJson(T.EXEC, n, { argv: ["echo", "second"] });
    await fx.host.waitFor(() => fx.host.of(n).filter((f) => f.type === T.EXIT).length === 2, 5000, "second EXIT");
    const second = fx.host.of(n).slice(before);
    expect(Buffer.concat(second.filter((f) => f.type === T.STDOUT).map((f) => f.payload)).toString()).toBe("second\n");
  });

  test("input for an id the agent does not know is ignored", async () => {
    await fx.host.send(T.STDIN, 999_999, new TextEncoder().encode("x"));
    await fx.host.send(T.STDIN_EOF, 999_999);
    await fx.host.sendJson(T.SIGNAL, 999_999, { signal: "SIGTERM" });
    await fx.host.send(T.PING, 77, new TextEncoder().encode("still here"));
    const pong = await fx.host.until((f) => f.type === T.PONG && f.id === 77);
    expect(Buffer.from(pong.payload).toString()).toBe("still here");
  });
});

describe("ping", () => {
  test.each([
    ["empty", new Uint8Array(0)],
    ["8 bytes", new TextEncoder().encode("12345678")],
    ["64 binary bytes", new Uint8Array(64).map((_, i) => 255 - i)],
  ])("PONG echoes %s with the same id", async (_name, payload) => {
    const n = fx.id();
    const t0 = performance.now();
    await fx.host.send(T.PING, n, payload);
    const pong = await fx.host.until((f) => f.type === T.PONG && f.id === n);
    expect(Buffer.from(pong.payload).equals(Buffer.from(payload))).toBe(true);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
