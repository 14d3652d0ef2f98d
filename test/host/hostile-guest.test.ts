// The host trusts nothing the guest sends. A hand-made hostile agent (./_hostile.ts) floods past its window,
// sends terminal escapes and huge strings, answers a GET with setuid bits while symlinks wait in the target
// directory, never answers, or sends junk; the host library (in its own process, so that its memory can be
// measured) and vge must stay bounded, print nothing a terminal acts on, write nothing through a symlink,
// and end with a clear error instead of hanging.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_WINDOW, T, decodeWindow, encodeFrame, encodeJson, encodeWindow } from "../../src/protocol/index.ts";
import { connect, type Guest } from "../../src/host/index.ts";
import { startVge, vge, vgeLines } from "../cli/_vge.ts";
import { GOOD_WELCOME, CONTROL, hostileAgents, rssBytes, writeFrame, type HostileAgent } from "./_hostile.ts";
import { tempDir } from "./_fixtures.ts";

const dir = tempDir("vge-hostile-");
afterAll(() => dir.remove());
const agent = hostileAgents(dir);
const enc = new TextEncoder();
const EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\r\u009b1;1H\u202egnp.exe\x7f";

/**
 * Runs the host library in its own process (./_flood-host.ts: one execution whose output nobody reads)
 * against `a`, lets the guest's flood start once the EXEC has arrived, and samples the host's resident size
 * until it exits: how it ended, how much it grew over its size before the flood, and how long it took.
 */
async function floodHost(a: HostileAgent, execArrived: Promise<void>, go: () => void) {
  const host = Bun.spawn(["bun", join(import.meta.dir, "_flood-host.ts"), a.path], { stdout: "pipe", stderr: "pipe", timeout: 30_000, killSignal: "SIGKILL" });
  try {
    await execArrived;
    await Bun.sleep(300);
    const base = await rssBytes(host.pid);
    let peak = base;
    const t0 = performance.now();
    go();
    const sampler = (async () => {
      while (host.exitCode === null && host.signalCode === null) {
        peak = Math.max(peak, await rssBytes(host.pid).catch(() => peak));
        await Bun.sleep(5);
      }
    })();
    const out = await new Response(host.stdout).text();
    await host.exited;
    await sampler;
    return { outcome: JSON.parse(out) as { code?: string; message?: string; result?: unknown }, grew: peak - base, ms: performance.now() - t0 };
  } finally {
    host.kill("SIGKILL");
  }
}

/** A guest that, once the host's EXEC has arrived and the test says go, runs `flood(sock, id)`. */
async function floodingAgent(flood: (sock: import("node:net").Socket, id: number) => Promise<void>) {
  let go!: () => void;
  const goSignal = new Promise<void>((r) => (go = r));
  let execSeen!: () => void;
  const execArrived = new Promise<void>((r) => (execSeen = r));
  const a = await agent({
    onFrame: (f, sock) => {
      if (f.type !== T.EXEC) return;
      execSeen();
      void goSignal.then(() => flood(sock, f.id));
    },
  });
  return { a, execArrived, go };
}

describe("(a) output beyond the window", () => {
  test("the host fails with EFLOW at once and its memory stays bounded while the guest sends 128 MiB", async () => {
    const FLOOD = 128 * 1024 * 1024;
    let sent = 0;
    const { a, execArrived, go } = await floodingAgent(async (sock, id) => {
      await writeFrame(sock, encodeJson(T.STARTED, id, { pid: 42 }));
      const chunk = encodeFrame(T.STDOUT, id, new Uint8Array(64 * 1024).fill(0x41));
      // Ignores every WINDOW it gets (there are none: the host's consumer never reads).
      while (sent < FLOOD && (await writeFrame(sock, chunk))) sent += 64 * 1024;
      await writeFrame(sock, encodeJson(T.EXIT, id, { status: "exited", code: 0 }));
    });
    const { outcome, grew, ms } = await floodHost(a, execArrived, go);
    expect(outcome.code).toBe("EFLOW");
    expect(outcome.message).toMatch(/execution 1: STDOUT: \d+ bytes exceed the \d+ bytes of credit/);
    // Bound: 16 MiB over the resident size before the flood (the window itself is 256 KiB); without the
    // check the host queued all 128 MiB.
    expect(grew).toBeLessThan(16 * 1024 * 1024);
    // The host hung up long before the guest could push its 128 MiB.
    expect(sent).toBeLessThan(FLOOD);
    expect(ms).toBeLessThan(10_000);
  }, 60_000);
});

describe("(a) the window, in process", () => {
  const chunk = (id: number, type: number, n: number) => encodeFrame(type, id, new Uint8Array(n).fill(0x42));

  test("STDOUT and STDERR share one window: 200 KiB + 100 KiB unread is EFLOW", async () => {
    const a = await agent({
      onFrame: (f, sock) => {
        if (f.type !== T.EXEC) return;
        for (let i = 0; i < 4; i++) sock.write(chunk(f.id, T.STDOUT, 50 * 1024));
        for (let i = 0; i < 2; i++) sock.write(chunk(f.id, T.STDERR, 50 * 1024));
      },
    });
    const g = await connect(a.addr);
    const err = await g.exec(["x"]).exited.catch((e) => e);
    expect(err.code).toBe("EFLOW");
    expect(g.error).toBe(err);
  });

  test("a GET past its window is EFLOW for the download, and for everything else on that connection", async () => {
    const a = await agent({
      onFrame: (f, sock) => {
        if (f.type === T.GET) for (let i = 0; i < 5; i++) sock.write(chunk(f.id, T.FILE_DATA, 64 * 1024));
      },
    });
    const g = await connect(a.addr);
    const other = g.exec(["y"]);
    const file = g.getFile("/big");
    expect((await file.done.catch((e) => e)).code).toBe("EFLOW");
    expect((await other.exited.catch((e) => e)).code).toBe("EFLOW");
    expect((await new Response(file.stream).text().catch((e) => e)).code).toBe("EFLOW");
  });

  test("a guest that keeps to the window is never cut off: 8 MiB, each window's worth sent only after WINDOW", async () => {
    const TOTAL = 8 * 1024 * 1024;
    // One connection, one execution: its state can live here.
    let credit = 0;
    let sent = 0;
    let id = 0;
    const a = await agent({
      onFrame: (f, sock) => {
        if (f.type === T.EXEC) [credit, id] = [DEFAULT_WINDOW, f.id];
        else if (f.type === T.WINDOW) credit += decodeWindow(f);
        else return;
        while (credit > 0 && sent < TOTAL) {
          const n = Math.min(credit, 64 * 1024, TOTAL - sent);
          sock.write(chunk(id, T.STDOUT, n));
          credit -= n;
          sent += n;
        }
        if (sent === TOTAL) {
          sent++;
          sock.write(encodeJson(T.EXIT, id, { status: "exited", code: 0 }));
        }
      },
    });
    const g = await connect(a.addr);
    const r = await g.run(["z"]);
    expect(r.status).toBe("exited");
    expect(r.stdout.byteLength).toBe(TOTAL);
    g.close();
  }, 30_000);
});

describe("(a) credit the guest gives back beyond the window", () => {
  // WINDOW returns credit for bytes the host sent; a guest returning more than was ever sent is lying, and
  // repeated WINDOW 0xffffffff would have the host count past 2^53 and send far beyond what the agent holds.
  const MAX_U32 = 0xffffffff;
  const windows = (id: number, n: number) => Buffer.concat(Array.from({ length: n }, () => encodeWindow(id, MAX_U32)));
  const ALL_CAPS = { ...GOOD_WELCOME, capabilities: ["exec", "files", "dirs", "tcp"] };

  test("WINDOW 0xffffffff, again and again: the host ends the connection with EFLOW, and its memory stays flat", async () => {
    const FLOOD = 32 * 1024 * 1024;
    let sent = 0;
    const { a, execArrived, go } = await floodingAgent(async (sock, id) => {
      await writeFrame(sock, encodeJson(T.STARTED, id, { pid: 42 }));
      const batch = windows(id, 7000);
      while (sent < FLOOD && (await writeFrame(sock, batch))) sent += batch.byteLength;
      await writeFrame(sock, encodeJson(T.EXIT, id, { status: "exited", code: 0 }));
    });
    const { outcome, grew, ms } = await floodHost(a, execArrived, go);
    // Before the check the host added every one of them and the execution ended normally (`result`).
    expect(outcome.code).toBe("EFLOW");
    expect(outcome.message).toBe(`guest ${a.addr}: the agent returned ${MAX_U32} bytes of credit for execution 1, more than was sent (${DEFAULT_WINDOW} of the ${DEFAULT_WINDOW}-byte window unused)`);
    console.log(`WINDOW flood: host RSS +${(grew / 1048576).toFixed(2)} MiB, ${sent} bytes of WINDOW frames written before the host hung up`);
    expect(grew).toBeLessThan(16 * 1024 * 1024);
    expect(sent).toBeLessThan(FLOOD);
    expect(ms).toBeLessThan(10_000);
  }, 60_000);

  // Every request that sends under the agent's window: the answer to its opening frame, then the lie. Each
  // sends no data first (empty file, empty directory, nothing written), so the window is exactly full.
  const empty = dir.file("empty");
  mkdirSync(empty);
  const cases: [string, number, (id: number) => Uint8Array[], (g: Guest) => Promise<unknown>, string][] = [
    ["an execution's stdin", T.EXEC, (id) => [encodeJson(T.STARTED, id, { pid: 7 })], (g) => g.exec(["cat"]).exited, "execution 1"],
    ["a PUT", T.PUT, () => [], (g) => g.putFile("/x", ""), "PUT 1"],
    ["a PUTDIR", T.PUTDIR, () => [], (g) => g.putDir(empty, "/d"), "PUTDIR 1"],
    ["a TCP stream", T.TCP_OPEN, (id) => [encodeJson(T.TCP_OPENED, id, { address: "127.0.0.1", port: 80 })], async (g) => (await g.connectTcp("127.0.0.1", 80)).closed, "TCP stream 1"],
  ];
  for (const [what, opening, answer, use, name] of cases) {
    test(`${what}: EFLOW for the request and for everything else on the connection`, async () => {
      let lies = 0;
      const a = await agent({
        welcome: ALL_CAPS,
        onFrame: (f, sock) => {
          if (f.type !== opening) return;
          for (const frame of answer(f.id)) sock.write(frame);
          // One WINDOW of a single byte is already too many: the window is full before anything was sent.
          sock.write(encodeWindow(f.id, 1));
          sock.write(windows(f.id, 100));
          lies++;
        },
      });
      const g = await connect(a.addr);
      const err = (await use(g).then(() => undefined, (e: Error & { code?: string }) => e))!;
      expect(lies).toBe(1);
      expect(err.code).toBe("EFLOW");
      expect(err.message).toBe(`guest ${a.addr}: the agent returned 1 bytes of credit for ${name}, more than was sent (${DEFAULT_WINDOW} of the ${DEFAULT_WINDOW}-byte window unused)`);
      expect(g.error).toBe(err);
      // Refused at once, with the same error.
      expect(() => g.exec(["next"])).toThrow(err.message);
    }, 20_000);
  }

  test("credit given back for what was sent is fine: 1 MiB of stdin, returned chunk by chunk", async () => {
    const TOTAL = 1024 * 1024;
    let got = 0;
    const a = await agent({
      onFrame: (f, sock) => {
        if (f.type === T.EXEC) sock.write(encodeJson(T.STARTED, f.id, { pid: 7 }));
        else if (f.type === T.STDIN) {
          got += f.payload.byteLength;
          sock.write(encodeWindow(f.id, f.payload.byteLength));
        } else if (f.type === T.STDIN_EOF) sock.write(encodeJson(T.EXIT, f.id, { status: "exited", code: got === TOTAL ? 0 : 1 }));
      },
    });
    const g = await connect(a.addr);
    const p = g.exec(["cat"]);
    const w = p.stdin!.getWriter();
    await w.write(new Uint8Array(TOTAL));
    await w.close();
    expect(await p.exited).toBe(0);
    g.close();
  }, 20_000);
});

describe("(a) the window a WELCOME announces", () => {
  test("an agent announcing 4 MiB gets no more than 262144 bytes of stdin before it returns credit (PROTOCOL.md §7)", async () => {
    let got = 0;
    let reached!: () => void;
    const stalled = new Promise<void>((r) => (reached = r));
    const a = await agent({
      welcome: { ...GOOD_WELCOME, window: 4 * 1024 * 1024 },
      onFrame: (f, sock) => {
        if (f.type === T.EXEC) sock.write(encodeJson(T.STARTED, f.id, { pid: 7 }));
        else if (f.type === T.STDIN) {
          got += f.payload.byteLength;
          if (got >= DEFAULT_WINDOW) reached();
        }
      },
    });
    const g = await connect(a.addr);
    const p = g.exec(["cat"]);
    void p.stdin!.getWriter().write(new Uint8Array(1024 * 1024)).catch(() => {});
    await stalled;
    // No WINDOW was ever sent: whatever more arrives now would be past §7's window.
    await Bun.sleep(300);
    expect(got).toBe(DEFAULT_WINDOW);
    g.close();
  }, 20_000);
});

describe("(b) escapes and huge strings", () => {
  const noControl = (s: string) => expect(s).not.toMatch(CONTROL);

  test("vge info escapes a WELCOME full of escape sequences, in text and in --json", async () => {
    const welcome = { ...GOOD_WELCOME, hostname: `host${EVIL}`, kernel: `6.1\n${EVIL}`, agent: `0.2${EVIL}`.slice(0, 64), arch: "x64\x1b[8m" };
    const a = await agent({ welcome, onFrame: (f, sock) => f.type === T.PING && sock.write(encodeFrame(T.PONG, f.id, f.payload)) });
    const text = await vge(["info", a.addr]);
    expect(text.code).toBe(0);
    noControl(text.stdout);
    noControl(text.stderr);
    expect(text.stdout).toContain("hostname:     host\\e]0;pwned\\x07\\e[2J\\e[31mred\\r\\x9b1;1H\\u202egnp.exe\\x7f\n");
    expect(text.stdout.split("\n").filter((l) => l).length).toBe(9);
    const json = await vge(["info", a.addr, "--json"]);
    expect(json.code).toBe(0);
    noControl(json.stdout);
    // Escaped, yet the same data once parsed.
    expect(JSON.parse(json.stdout).hostname).toBe(welcome.hostname);
  }, 30_000);

  test("a WELCOME with a 200 kB hostname is refused: one bounded line, exit 255", async () => {
    // As large as one frame allows (256 KiB payload).
    const a = await agent({ welcome: { ...GOOD_WELCOME, hostname: `${EVIL}${"x".repeat(200_000)}` } });
    const r = await vge(["info", a.addr]);
    expect(r.code).toBe(255);
    expect(r.stdout).toBe("");
    noControl(r.stderr);
    expect(vgeLines(r.stderr)).toEqual([`vge: error: guest ${a.addr}: malformed frame from the agent: WELCOME frame: hostname is ${EVIL.length + 200_000} characters long; at most 256 are accepted`]);
  }, 30_000);

  test("a WELCOME with an absurd window, version or pid is refused", async () => {
    for (const [field, value, msg] of [
      ["window", 2 ** 40, "window must be 1..67108864 bytes"],
      ["window", -1, "window must be 1..67108864 bytes"],
      ["version", "2\x1b[31m", "the agent chose version 2\\e[31m; this host speaks 2"],
      ["pid", 1.5, "pid must be a u32"],
      ["capabilities", Array(100).fill("exec"), "capabilities must be at most 64 short lowercase names"],
    ] as const) {
      const a = await agent({ welcome: { ...GOOD_WELCOME, [field]: value } });
      const r = await vge(["info", a.addr]);
      expect(r.code).toBe(255);
      noControl(r.stderr);
      expect(r.stderr).toContain(`WELCOME frame: ${msg}`);
    }
  }, 60_000);

  test("an ERROR with an escape-laden code and a 100 kB message: one bounded, escaped line", async () => {
    const a = await agent({
      onFrame: (f, sock) => f.type === T.EXEC && sock.write(encodeJson(T.ERROR, 0, { code: "\x1b[31mEVIL", message: EVIL.repeat(3000) })),
    });
    const r = await vge(["run", a.addr, "--", "x"]);
    expect(r.code).toBe(255);
    noControl(r.stderr);
    const lines = vgeLines(r.stderr);
    expect(lines.length).toBe(1);
    expect(lines[0]).toStartWith(`vge: error: guest ${a.addr}: the agent reported EREMOTE: \\e]0;pwned\\x07`);
    expect(r.stderr.length).toBeLessThan(3000);
  }, 30_000);

  test("an EXIT error with escapes in its message: escaped and bounded; a bad signal name is EPROTO", async () => {
    const exits = [
      { status: "error", errno: "ENOENT", message: EVIL.repeat(3000) },
      { status: "signaled", signal: "\x1b[31mSIGKILL", signo: 9 },
      { status: "error", errno: "ENOENT\x1b[2J", message: "x" },
    ];
    let i = 0;
    const a = await agent({ onFrame: (f, sock) => f.type === T.EXEC && sock.write(encodeJson(T.EXIT, f.id, exits[i++])) });
    const err = await vge(["run", a.addr, "--", "x"]);
    expect(err.code).toBe(127);
    noControl(err.stderr);
    expect(vgeLines(err.stderr).length).toBe(1);
    expect(err.stderr).toContain("vge: error: x: \\e]0;pwned\\x07\\e[2J");
    expect(err.stderr.length).toBeLessThan(3000);
    for (const what of ["signal", "errno"]) {
      const r = await vge(["run", a.addr, "--", "x"]);
      expect(r.code).toBe(255);
      noControl(r.stderr);
      expect(r.stderr).toContain(`EXIT frame: ${what} must be a name like ENOENT or SIGKILL`);
    }
  }, 30_000);
});

describe("(c) vge cp from a hostile guest", () => {
  /** Answers a GET with `data` and RESULT {mode}; `beforeData` runs first (to plant things). */
  function getAnswer(data: string, result: Record<string, unknown>, beforeData: () => void = () => {}) {
    return (f: { type: number; id: number }, sock: import("node:net").Socket) => {
      if (f.type !== T.GET) return;
      beforeData();
      sock.write(encodeFrame(T.FILE_DATA, f.id, enc.encode(data)));
      sock.write(encodeJson(T.RESULT, f.id, result));
    };
  }

  async function cpWithUmask(args: string[], umask: number, plant?: (pid: number) => void) {
    const old = process.umask(umask);
    try {
      const v = startVge(args);
      plant?.(v.proc.pid);
      return await v.done;
    } finally {
      process.umask(old);
    }
  }

  test("setuid/setgid are dropped, the umask applies, nothing is written through a symlink", async () => {
    const d = tempDir("vge-cp-");
    try {
      writeFileSync(d.file("elsewhere"), "original\n");
      symlinkSync(d.file("elsewhere"), d.file("out"));
      let vgePid = 0;
      // The old code's predictable temporary name, planted as a symlink once vge's pid is known.
      const plant = () => symlinkSync(d.file("planted-target"), d.file(`.out.vge-${vgePid}`));
      const a = await agent({ onFrame: getAnswer("payload\n", { ok: true, size: 8, mode: 0o6755 }, plant) });
      const r = await cpWithUmask(["cp", a.addr, ":/etc/x", d.file("out")], 0o027, (pid) => (vgePid = pid));
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      expect(readFileSync(d.file("elsewhere"), "utf8")).toBe("original\n");
      expect(existsSync(d.file("planted-target"))).toBe(false);
      const st = lstatSync(d.file("out"));
      expect(st.isFile()).toBe(true);
      expect(readFileSync(d.file("out"), "utf8")).toBe("payload\n");
      expect(st.mode & 0o7777).toBe(0o750);
      // Only what we put there and the result: no temporary file left behind.
      expect(readdirSync(d.path).sort()).toEqual([".out.vge-" + vgePid, "elsewhere", "out"].sort());
    } finally {
      d.remove();
    }
  }, 30_000);

  test("--preserve keeps the permission bits (still no setuid/setgid/sticky) and the mtime when sent", async () => {
    const d = tempDir("vge-cp-");
    try {
      const a = await agent({ onFrame: getAnswer("data", { ok: true, size: 4, mode: 0o7775, mtime: 1_000_000_000 }) });
      const r = await cpWithUmask(["cp", "--preserve", a.addr, ":/x", d.file("kept")], 0o077);
      expect(r.code).toBe(0);
      const st = lstatSync(d.file("kept"));
      expect(st.mode & 0o7777).toBe(0o775);
      expect(Math.round(st.mtimeMs / 1000)).toBe(1_000_000_000);
    } finally {
      d.remove();
    }
  }, 30_000);

  test("a transfer that fails half-way leaves the target untouched and no temporary file", async () => {
    const d = tempDir("vge-cp-");
    try {
      writeFileSync(d.file("elsewhere"), "original\n");
      symlinkSync(d.file("elsewhere"), d.file("out"));
      const a = await agent({ onFrame: getAnswer("half", { ok: false, errno: "EIO", message: "disk on fire\x1b[2J" }) });
      const r = await cpWithUmask(["cp", a.addr, ":/x", d.file("out")], 0o022);
      expect(r.code).toBe(1);
      expect(r.stderr).not.toMatch(CONTROL);
      expect(r.stderr).toContain("disk on fire\\e[2J");
      expect(readFileSync(d.file("elsewhere"), "utf8")).toBe("original\n");
      expect(lstatSync(d.file("out")).isSymbolicLink()).toBe(true);
      expect(readdirSync(d.path).sort()).toEqual(["elsewhere", "out"]);
    } finally {
      d.remove();
    }
  }, 30_000);
  test("a RESULT that lies about the size, a bad mode, or data past --max-size: EPROTO, no hang, nothing left", async () => {
    for (const [args, data, result, msg] of [
      [[], "12345678", { ok: true, size: 4, mode: 0o644 }, "RESULT frame: size 4, but 8 bytes arrived"],
      [[], "1234", { ok: true, size: 4, mode: 0o17777 }, "RESULT frame: mode must be permission bits 0..0o7777"],
      [["--max-size", "3"], "1234", { ok: true, size: 4 }, "FILE_DATA frame: more than the 3 bytes asked for at most"],
    ] as const) {
      const d = tempDir("vge-cp-");
      try {
        const a = await agent({ onFrame: getAnswer(data, result) });
        const r = await vge(["cp", ...args, a.addr, ":/x", d.file("out")], { timeoutMs: 15_000 });
        expect(r.code).toBe(255);
        expect(vgeLines(r.stderr)).toEqual([`vge: error: guest ${a.addr}: malformed frame from the agent: ${msg}`]);
        expect(r.ms).toBeLessThan(5_000);
        expect(readdirSync(d.path)).toEqual([]);
      } finally {
        d.remove();
      }
    }
  }, 60_000);
});

describe("(d) a guest that never answers and never closes", () => {
  test("no WELCOME: the hello timeout ends vge info after 10 s", async () => {
    const a = await agent({ welcome: null });
    const r = await vge(["info", a.addr], { timeoutMs: 30_000 });
    expect(r.code).toBe(255);
    expect(r.stderr).toContain("no WELCOME within 10 s");
    expect(r.ms).toBeGreaterThan(9_500);
    expect(r.ms).toBeLessThan(15_000);
  }, 40_000);

  test("WELCOME, then silence: vge run --timeout 1 gives up 5 s after the deadline", async () => {
    const a = await agent({});
    const r = await vge(["run", a.addr, "--timeout", "1", "--", "sleep", "100"], { timeoutMs: 30_000 });
    expect(r.code).toBe(255);
    expect(r.stderr).toContain("the agent did not report the command's end within 6 s");
    expect(r.ms).toBeGreaterThan(5_500);
    expect(r.ms).toBeLessThan(10_000);
  }, 40_000);
});

describe("(e) junk after the WELCOME", () => {
  for (const [what, junk, msg] of [
    ["an unknown frame type", new Uint8Array([5, 0, 0, 0, 0x55, 0, 0, 0, 0]), "unknown frame type 0x55"],
    ["an oversized length", new Uint8Array([0xff, 0xff, 0xff, 0x7f, T.STDOUT, 1, 0, 0, 0]), "frame length 2147483647 is outside 5..262149"],
    ["a second WELCOME", encodeJson(T.WELCOME, 0, GOOD_WELCOME), "a second WELCOME"],
    ["a second STARTED", new Uint8Array([...encodeJson(T.STARTED, 1, { pid: 5 }), ...encodeJson(T.STARTED, 1, { pid: 6 })]), "STARTED frame: a second one for the same execution"],
  ] as const) {
    test(`${what}: a clear EPROTO error, exit 255, no hang`, async () => {
      const a = await agent({ onFrame: (f, sock) => f.type === T.EXEC && sock.write(junk) });
      const r = await vge(["run", a.addr, "--", "x"], { timeoutMs: 15_000 });
      expect(r.code).toBe(255);
      expect(vgeLines(r.stderr)).toEqual([`vge: error: guest ${a.addr}: malformed frame from the agent: ${msg}`]);
      expect(r.ms).toBeLessThan(5_000);
    }, 20_000);
  }

  test("frames for ids the host never opened are dropped, not kept", async () => {
    const a = await agent({
      onFrame: (f, sock) => {
        if (f.type !== T.EXEC) return;
        for (let id = 1000; id < 1100; id++) sock.write(encodeFrame(T.STDOUT, id, new Uint8Array(1000)));
        sock.write(encodeFrame(T.STDOUT, f.id, enc.encode("mine\n")));
        sock.write(encodeJson(T.EXIT, f.id, { status: "exited", code: 3 }));
        sock.write(encodeJson(T.EXIT, f.id, { status: "exited", code: 4 }));
      },
    });
    const r = await vge(["run", a.addr, "--", "x"]);
    expect(r).toMatchObject({ code: 3, stdout: "mine\n", stderr: "" });
  }, 20_000);
});
