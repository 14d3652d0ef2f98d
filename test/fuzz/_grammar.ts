// Stateful sessions for the agent: a small state machine over what a host has open (executions, detached
// jobs and their tags, attaches, PUTs, PUTDIRs, GETs, GETDIRs, TCP streams) that draws each next step from
// what makes sense now (STDIN to an open stdin, WINDOW to a stream that sends, FILE_DATA within a PUT's
// size...), and now and then a step that does not (a frame on a closed or never-opened id, data past a
// size or a window, an id reused while open, a step before HELLO). Byte mutations of single sessions
// rarely get three requests deep; these do, in every order. Same safety rules as _mutate.ts: only the
// seeds' commands, only paths inside the fuzz directory, TCP only to the run's echo listener, and every
// detached job bounded by timeoutMs (at most 1.5 s) so that none outlives the run.
import { DEFAULT_WINDOW, MAGIC, MAX_PAYLOAD, T } from "../../src/protocol/v2/frame.ts";
import { encodeStep, mutateBytes, SENT_TYPES, type Case } from "./_mutate.ts";
import type { Rng } from "./_rng.ts";
import type { Step } from "./_seeds.ts";

type Kind = "exec" | "attach" | "put" | "putdir" | "get" | "getdir" | "tcp" | "list" | "kill" | "ping";

interface Open {
  id: number;
  kind: Kind;
  /** STDIN may still be sent (exec, attach). */
  stdin?: boolean;
  pty?: boolean;
  /** PUT: bytes announced and sent so far; PUTDIR: a file entry's remaining bytes. */
  size?: number;
  sent?: number;
  /** PUTDIR: relative directories made so far (for entries inside them). */
  dirs?: string[];
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const u32 = (n: number) => {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, n >>> 0, true);
  return p;
};

/** Bytes that spell no path and no shell word (see _mutate.ts garbage()). */
function data(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.chance(0.5) ? 0x61 + (i % 26) : rng.int(0x80, 0xff);
  return out;
}

export interface GrammarSession {
  steps: Step[];
  notes: string[];
}

/**
 * One session of 2 to `maxSteps` steps after HELLO. `bad` is the chance of each step being one that breaks
 * the protocol (the agent must refuse it cleanly); the rest are plausible in the state so far.
 */
export function grammarSession(rng: Rng, dir: string, echoPort: number | undefined, maxSteps = 24, bad = rng.pick([0, 0.02, 0.05, 0.15])): GrammarSession {
  const steps: Step[] = [{ type: T.HELLO, id: 0, json: { versions: [2], client: "vge-fuzz-grammar" } }];
  const notes: string[] = [];
  const open: Open[] = [];
  const closed: number[] = [];
  const tags: string[] = [];
  let nextId = rng.pick([1, 2, 1000, 0x7ffffff0]);
  const fresh = () => nextId++;
  const frame = (type: number, id: number, payload: Uint8Array = new Uint8Array(0)): Step => ({ type, id, data: payload });
  const js = (type: number, id: number, json: unknown): Step => ({ type, id, json });
  const close = (o: Open) => {
    open.splice(open.indexOf(o), 1);
    closed.push(o.id);
  };
  const of = (...kinds: Kind[]) => open.filter((o) => kinds.includes(o.kind));
  // Credit back can only be for bytes the agent sent, which the grammar does not know: mostly small
  // amounts (a whole window would be an overrun, answered with EFLOW, and end the session early).
  const windowSize = () => (rng.chance(0.85) ? rng.pick([1, 5, 15]) : rng.pick([4096, DEFAULT_WINDOW]));
  const n = rng.int(2, maxSteps);

  for (let k = 0; k < n; k++) {
    const gapMs = rng.chance(0.15) ? rng.pick([1, 5, 20, 50]) : undefined;
    const push = (s: Step, note: string) => {
      steps.push(gapMs ? { ...s, gapMs } : s);
      notes.push(note);
    };
    if (rng.chance(bad)) {
      // A step that breaks the protocol, in the middle of a plausible session.
      const r = rng.next();
      const anyId = rng.pick([0, 0xffffffff, ...closed, ...open.map((o) => o.id), nextId + 7]);
      if (r < 0.3) {
        const type = rng.pick(SENT_TYPES);
        push(frame(type, anyId, data(rng, rng.pick([0, 1, 4, 9, 300]))), `bad: ${type.toString(16)} with junk on id ${anyId}`);
      } else if (r < 0.45 && open.length) {
        const o = rng.pick(open);
        push(js(T.EXEC, o.id, { argv: ["true"] }), `bad: EXEC on open id ${o.id} (${o.kind})`);
      } else if (r < 0.6) {
        const o = rng.pick([...open, { id: anyId, kind: "exec" as Kind }]);
        push(frame(T.WINDOW, o.id, u32(rng.pick([0xffffffff, 0x80000000, DEFAULT_WINDOW + 1]))), `bad: WINDOW past any window on id ${o.id}`);
      } else if (r < 0.7) {
        const o = rng.pick([...of("exec", "attach", "put", "putdir", "tcp"), { id: anyId, kind: "exec" as Kind }]);
        const type = o.kind === "put" || o.kind === "putdir" ? T.FILE_DATA : o.kind === "tcp" ? T.TCP_DATA : T.STDIN;
        push(frame(type, o.id, data(rng, rng.pick([DEFAULT_WINDOW + 1, MAX_PAYLOAD]))), `bad: ${type.toString(16)} past the window on id ${o.id}`);
      } else if (r < 0.8) {
        push(js(T.HELLO, 0, { versions: [2] }), "bad: a second HELLO");
      } else if (r < 0.9 && of("putdir").length) {
        const o = rng.pick(of("putdir"));
        push(js(T.DIR_ENTRY, o.id, { type: rng.pick(["file", "dir", "fifo"]), path: rng.pick(["", ".", "a//b", "x".repeat(300)]), mode: 0o644, mtime: 0, size: 1 }), `bad: malformed DIR_ENTRY on ${o.id}`);
      } else {
        push(js(rng.pick([T.ATTACH, T.KILL]), fresh(), { tag: rng.pick(["", "-x", "a".repeat(65)]), job: rng.pick([0, -1, 2 ** 32]) }), "bad: ATTACH/KILL with a malformed ref");
      }
      continue;
    }

    // Plausible next steps in this state, each with a weight.
    const choices: [number, () => void][] = [];
    const add = (w: number, f: () => void) => choices.push([w, f]);
    add(3, () => {
      const id = fresh();
      const r = rng.next();
      if (r < 0.35) {
        open.push({ id, kind: "exec", stdin: true });
        push(js(T.EXEC, id, { argv: ["cat"], ...(rng.chance(0.3) ? { merge: true } : {}) }), `EXEC cat ${id}`);
      } else if (r < 0.5) {
        open.push({ id, kind: "exec", stdin: true, pty: true });
        push(js(T.EXEC, id, { argv: ["cat"], pty: { cols: rng.int(1, 300), rows: rng.int(1, 100) } }), `EXEC cat pty ${id}`);
      } else if (r < 0.75) {
        const tag = rng.chance(0.7) ? `g${rng.int(0, 5)}` : undefined;
        if (tag) tags.push(tag);
        open.push({ id, kind: "exec", stdin: true });
        const keep = rng.pick([0, 1, 64, 4096, 1 << 20]);
        const argv = rng.chance(0.6) ? ["sleep", rng.pick(["0.05", "0.2", "0.4"])] : ["echo", "detached"];
        push(js(T.EXEC, id, { argv, timeoutMs: 500, detach: { ...(tag ? { tag } : {}), keep } }), `EXEC detached ${argv.join(" ")} tag ${tag} keep ${keep} on ${id}`);
      } else {
        open.push({ id, kind: "exec" });
        push(js(T.EXEC, id, rng.chance(0.5) ? { argv: ["echo", "x".repeat(rng.int(0, 2000))] } : { shell: "echo out; echo err >&2", stdin: "closed" }), `EXEC echo ${id}`);
      }
    });
    add(0.3, () => {
      // Several detached jobs at once: more than the agent's --max-detached (3 in the fuzz run), which it
      // must refuse (EXIT error EAGAIN) whatever their keep.
      const count = rng.int(2, 6);
      for (let i = 0; i < count; i++) {
        const id = fresh();
        open.push({ id, kind: "exec", stdin: true });
        steps.push(js(T.EXEC, id, { argv: ["sleep", "1"], timeoutMs: 1500, detach: { keep: rng.pick([0, 0, 64]) } }));
      }
      notes.push(`${count} x EXEC detached sleep 1`);
    });
    add(1, () => {
      const id = fresh();
      open.push({ id, kind: "attach", stdin: true });
      const ref = tags.length && rng.chance(0.7) ? { tag: rng.pick(tags) } : { job: rng.int(1, 40) };
      const from = rng.chance(0.5) ? { from: { stdout: rng.pick([0, 1, 1e6, Number.MAX_SAFE_INTEGER]), stderr: rng.pick([0, 3]) } } : {};
      push(js(T.ATTACH, id, { ...ref, ...from }), `ATTACH ${JSON.stringify(ref)} on ${id}`);
    });
    add(0.5, () => {
      const id = fresh();
      push(js(T.LIST, id, {}), `LIST ${id}`);
    });
    add(0.5, () => {
      const ref = tags.length && rng.chance(0.7) ? { tag: rng.pick(tags) } : { job: rng.int(1, 40) };
      push(js(T.KILL, fresh(), { ...ref, signal: rng.pick(["SIGTERM", "SIGKILL", "SIGCONT"]) }), `KILL ${JSON.stringify(ref)}`);
    });
    add(1, () => {
      const id = fresh();
      const size = rng.pick([0, 1, 100, 70_000, 300_000]);
      open.push({ id, kind: "put", size, sent: 0 });
      push(js(T.PUT, id, { path: `${dir}/g-put-${rng.int(0, 3)}`, size, mode: 0o600 }), `PUT ${size} bytes on ${id}`);
    });
    add(1, () => {
      const id = fresh();
      open.push({ id, kind: "get" });
      push(js(T.GET, id, { path: rng.pick([`${dir}/get-me`, `${dir}/sub`, `${dir}/g-put-0`, `${dir}/none`]), ...(rng.chance(0.3) ? { maxSize: rng.int(0, 20) } : {}) }), `GET ${id}`);
    });
    add(0.8, () => {
      const id = fresh();
      open.push({ id, kind: "putdir", dirs: [] });
      push(js(T.PUTDIR, id, { path: `${dir}/g-tree-${rng.int(0, 2)}` }), `PUTDIR ${id}`);
    });
    add(0.8, () => {
      const id = fresh();
      open.push({ id, kind: "getdir" });
      push(js(T.GETDIR, id, { path: rng.pick([`${dir}/sub`, `${dir}/g-tree-0`, `${dir}/none`]) }), `GETDIR ${id}`);
    });
    if (echoPort !== undefined)
      add(0.8, () => {
        const id = fresh();
        open.push({ id, kind: "tcp" });
        push(js(T.TCP_OPEN, id, { host: "127.0.0.1", port: echoPort }), `TCP_OPEN ${id}`);
      });
    add(0.3, () => push(frame(T.PING, fresh(), data(rng, rng.int(0, 16))), "PING"));

    for (const o of of("exec", "attach").filter((o) => o.stdin)) {
      add(2, () => {
        const size = rng.pick([1, 100, 4096, 65536]);
        push(frame(T.STDIN, o.id, data(rng, size)), `STDIN ${size} to ${o.id}`);
      });
      add(0.7, () => {
        o.stdin = false;
        push(frame(T.STDIN_EOF, o.id), `STDIN_EOF ${o.id}`);
      });
    }
    for (const o of of("exec", "attach", "get", "getdir", "tcp")) add(0.5, () => push(frame(T.WINDOW, o.id, u32(windowSize())), `WINDOW to ${o.id}`));
    for (const o of of("exec", "attach")) {
      add(0.5, () => push(js(T.SIGNAL, o.id, { signal: rng.pick(["SIGTERM", "SIGKILL", "SIGINT", "SIGCONT", "SIGWINCH"]) }), `SIGNAL ${o.id}`));
      if (o.pty) add(0.5, () => push(js(T.RESIZE, o.id, { cols: rng.int(1, 500), rows: rng.int(1, 200) }), `RESIZE ${o.id}`));
      add(0.3, () => (close(o), notes.push(`(forget ${o.id})`)));
    }
    for (const o of of("put")) {
      const left = o.size! - o.sent!;
      if (left > 0)
        add(2, () => {
          const take = Math.min(left, rng.pick([1, 1000, 65536]));
          o.sent! += take;
          push(frame(T.FILE_DATA, o.id, data(rng, take)), `FILE_DATA ${take} to PUT ${o.id}`);
        });
      add(left === 0 ? 3 : 0.3, () => {
        close(o);
        push(frame(T.FILE_END, o.id), `FILE_END ${o.id}${left ? ` (${left} short)` : ""}`);
      });
    }
    for (const o of of("putdir")) {
      if (o.size)
        add(3, () => {
          const take = Math.min(o.size!, rng.pick([1, 500, 65536]));
          o.size! -= take;
          push(frame(T.FILE_DATA, o.id, data(rng, take)), `FILE_DATA ${take} to PUTDIR ${o.id}`);
        });
      else {
        add(2, () => {
          const parent = o.dirs!.length && rng.chance(0.6) ? `${rng.pick(o.dirs!)}/` : "";
          const name = `${parent}${rng.pick(["d", "e", "f", "l"])}${rng.int(0, 3)}`;
          const r = rng.next();
          const base = { path: name, mode: rng.pick([0o755, 0o700, 0o644, 0o4755, 0]), mtime: rng.pick([0, 1.7e12, -1, 1e15]) };
          if (r < 0.35) {
            o.dirs!.push(name);
            push(js(T.DIR_ENTRY, o.id, { type: "dir", ...base }), `DIR_ENTRY dir ${name}`);
          } else if (r < 0.8) {
            o.size = rng.pick([0, 3, 1000, 70_000]);
            push(js(T.DIR_ENTRY, o.id, { type: "file", ...base, size: o.size }), `DIR_ENTRY file ${name} ${o.size}`);
          } else {
            push(js(T.DIR_ENTRY, o.id, { type: "symlink", ...base, target: rng.pick(["f0", "d0", "d0/f1", "x"]) }), `DIR_ENTRY symlink ${name}`);
          }
        });
        add(0.3, () => {
          // Many directory entries in a row: what the receiver keeps per directory must stay bounded.
          const count = rng.pick([50, 500, 3000]);
          for (let i = 0; i < count; i++) steps.push(js(T.DIR_ENTRY, o.id, { type: "dir", path: `many${i}`, mode: 0o755, mtime: 1.7e12 }));
          notes.push(`${count} DIR_ENTRY dir`);
        });
      }
      add(o.size ? 0.3 : 1, () => {
        close(o);
        push(frame(T.DIR_END, o.id), `DIR_END ${o.id}${o.size ? " (file cut short)" : ""}`);
      });
    }
    for (const o of of("tcp")) {
      add(2, () => push(frame(T.TCP_DATA, o.id, utf8("x".repeat(rng.pick([1, 100, 5000])))), `TCP_DATA ${o.id}`));
      add(0.7, () => push(frame(T.TCP_EOF, o.id), `TCP_EOF ${o.id}`));
      add(0.7, () => {
        close(o);
        push(frame(T.TCP_RESET, o.id), `TCP_RESET ${o.id}`);
      });
    }
    for (const o of of("get", "getdir")) add(0.2, () => (close(o), notes.push(`(forget ${o.id})`)));

    const total = choices.reduce((s, [w]) => s + w, 0);
    let at = rng.next() * total;
    for (const [w, f] of choices) {
      at -= w;
      if (at <= 0) {
        f();
        break;
      }
    }
  }
  return { steps, notes };
}

/** A grammar session as a case: encoded as the agent reads it, and now and then a byte mutation or a re-split. */
export function grammarCase(rng: Rng, dir: string, echoPort: number | undefined): Case {
  const { steps, notes } = grammarSession(rng, dir, echoPort);
  const frames = steps.map((s) => ({ bytes: encodeStep(s), protect: true, gapMs: s.gapMs ?? 0 }));
  // Flips stay out of payloads (protect): paths must stay where the grammar put them.
  const { chunks, gapsMs } = rng.chance(0.2) ? mutateBytes(rng, frames, notes) : { chunks: frames.map((f) => f.bytes), gapsMs: frames.map((f) => f.gapMs) };
  return { chunks: [MAGIC, ...chunks], gapsMs: [0, ...gapsMs], notes: notes.length > 40 ? [...notes.slice(0, 40), `… ${notes.length - 40} more`] : notes, seedName: "grammar" };
}
