// The fuzz target: the compiled agent listening on a Unix socket, one connection per case, and the
// judgement of whether a case broke it. "Broke" means: the agent exited, a fresh connection is not served
// within 5 s (HELLO -> WELCOME, PING -> PONG, EXEC true -> EXIT 0), or its log shows an exception that
// escaped a session or the process. An ERROR frame and a close is the correct answer to bad input.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { listeningAgent, type Agent } from "../agent/v2/_agent.ts";
import { T, V2Host, json } from "../agent/v2/_host.ts";
import { typeName } from "../../src/protocol/v2/frame.ts";
import { escapedErrorLines } from "../helpers/agentlog.ts";
import { childrenOf } from "../helpers/proc.ts";
import type { Case } from "./_mutate.ts";

/** Always this long (mkdtemp adds 6 characters), so a saved case's paths can be swapped for a new directory's. */
const DIR_PREFIX = "/tmp/vge-fuzz-";
/** A case ends when the agent has closed, or has sent nothing for this long after our last write. */
const QUIET_MS = 60;
/** and in any case after this long: the longest seed command is sleep 0.3. */
const CASE_MS = 1500;
export const HEALTH_MS = 5000;

export interface Target {
  dir: string;
  sock: string;
  agent: Agent;
  /** Where in the agent's log the next check starts. */
  logAt: number;
}

/** The fuzz directory: the agent's cwd and the only place PUT and GET may name. */
export function fuzzDir(): string {
  const dir = mkdtempSync(DIR_PREFIX);
  mkdirSync(join(dir, "sub"));
  writeFileSync(join(dir, "get-me"), "a file for GET\n");
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The agent's --max-detached for the run: small, so that the cases (the grammar starts several detached
 * jobs per session) can reach it, and `overLimit` can hold the agent to it.
 */
export const MAX_DETACHED = 3;

let sockN = 0;
export async function startTarget(dir: string, lifetimeMs: number): Promise<Target> {
  const sock = join(dir, `agent-${++sockN}.sock`);
  const agent = await listeningAgent(sock, lifetimeMs, ["--max-detached", String(MAX_DETACHED)], dir);
  // One execution first: it starts the agent's poll thread (src/sys/fdwatch.ts), whose fds then belong to
  // the baseline the cases are measured against.
  const warm = await V2Host.connect(sock);
  await warm.hello();
  await warm.run(1, { argv: ["true"] });
  warm.close();
  return { dir, sock, agent, logAt: 0 };
}

/**
 * SIGKILL to the process group of every child the agent has (each execution is a session and group
 * leader), then the agent. Only processes this agent started: nothing found by name.
 */
export async function stopTarget(t: Target): Promise<void> {
  for (const c of childrenOf(t.agent.pid)) {
    try {
      process.kill(-c.pid, "SIGKILL");
    } catch {
      // gone, or not a group leader: the agent's own exit takes it with it or init reaps it
    }
  }
  await t.agent.stop();
}

export function alive(t: Target): boolean {
  return t.agent.proc.exitCode === null && t.agent.proc.signalCode === null;
}

/** Writes the case on a fresh connection, then waits for the agent to close or go quiet. Never throws. */
export interface CaseResult {
  frames: number;
  /** The ERROR frame's code, if the agent refused the input. */
  error?: string;
  closedByAgent: boolean;
  /** What the agent sent that breaks PROTOCOL.md §3 and §9, whatever the host sent. */
  violations: string[];
}

export async function runCase(t: Target, c: Case): Promise<CaseResult> {
  let h: V2Host;
  try {
    h = await V2Host.connect(t.sock);
  } catch (e) {
    return { frames: 0, closedByAgent: true, violations: [`connect: ${(e as Error).message}`] };
  }
  try {
    for (let i = 0; i < c.chunks.length; i++) {
      if (c.gapsMs[i]) await Bun.sleep(c.gapsMs[i]!);
      // The agent may close on a bad frame while we still write: that is its right.
      if (!(await h.write(c.chunks[i]!).then(() => true, () => false))) break;
    }
    const end = performance.now() + CASE_MS;
    let seen = -1;
    let quietSince = performance.now();
    while (performance.now() < end) {
      if (await h.closedWithin(20)) break;
      if (h.frames.length !== seen) (seen = h.frames.length), (quietSince = performance.now());
      else if (performance.now() - quietSince >= QUIET_MS) break;
    }
    const err = h.frames.find((f) => f.type === T.ERROR);
    const violations: string[] = [];
    if (h.decodeError) violations.push(`agent sent an undecodable frame: ${h.decodeError.message}`);
    if (err) {
      // ERROR {code, message} on id 0, the last frame, then the agent closes.
      let body: Record<string, unknown> = {};
      try {
        body = json(err);
      } catch {
        violations.push("ERROR payload is not a JSON object");
      }
      if (err.id !== 0) violations.push(`ERROR on id ${err.id}, not 0`);
      if (typeof body.code !== "string" || typeof body.message !== "string") violations.push(`ERROR without code and message: ${JSON.stringify(body)}`);
      const after = h.frames.slice(h.frames.indexOf(err) + 1);
      if (after.length) violations.push(`frames after ERROR: ${[...new Set(after.map((f) => typeName(f.type)))].join(", ")}`);
      if (!(await h.closedWithin(2000))) violations.push("ERROR sent, but the connection stayed open for 2 s");
    }
    const closedByAgent = await h.closedWithin(0);
    return { frames: h.frames.length, error: err ? String(json(err).code) : undefined, closedByAgent, violations };
  } finally {
    h.close();
  }
}

/** Undefined if the agent serves a fresh connection in full within HEALTH_MS, else what failed. */
export async function health(t: Target): Promise<string | undefined> {
  if (!alive(t)) return `agent exited (code ${t.agent.proc.exitCode}, signal ${t.agent.proc.signalCode})`;
  let h: V2Host | undefined;
  const work = (async () => {
    h = await V2Host.connect(t.sock);
    await h.hello();
    await h.send(T.PING, 1, new TextEncoder().encode("health"));
    const pong = await h.until((f) => f.type === T.PONG && f.id === 1, HEALTH_MS, "PONG");
    if (new TextDecoder().decode(pong.payload) !== "health") return "PONG payload differs from the PING's";
    const r = await h.run(2, { argv: ["true"] }, { timeoutMs: HEALTH_MS });
    if (r.exit.status !== "exited" || r.exit.code !== 0) return `EXEC true gave ${JSON.stringify(r.exit)}`;
    return undefined;
  })();
  try {
    return await Promise.race([work.catch((e) => `fresh connection: ${(e as Error).message}`), Bun.sleep(HEALTH_MS).then(() => `fresh connection not served within ${HEALTH_MS} ms`)]);
  } finally {
    h?.close();
  }
}

/**
 * Once a case's connection has closed, only detached jobs may still run (the agent kills the rest), and at
 * most MAX_DETACHED of them: undefined, or what is over. Polled for 200 ms, as the kills land (the jobs that
 * could be over the limit live 1 s: see the grammar's bursts).
 */
export async function overLimit(t: Target): Promise<string | undefined> {
  const end = performance.now() + 200;
  for (;;) {
    const live = childrenOf(t.agent.pid).filter((c) => c.state !== "Z");
    if (live.length <= MAX_DETACHED) return undefined;
    if (performance.now() > end) {
      const over = `${live.length} processes still run after the case's connection closed, more than --max-detached ${MAX_DETACHED}: ${live.map((c) => `${c.pid} ${c.comm}`).join(", ")}`;
      // Their timeoutMs ends them within 1.5 s: the next case starts under the limit, and is not blamed.
      for (const stop = performance.now() + 2000; performance.now() < stop && childrenOf(t.agent.pid).filter((c) => c.state !== "Z").length > MAX_DETACHED; ) await Bun.sleep(50);
      return over;
    }
    await Bun.sleep(50);
  }
}

/** Lines since the last call that show an escaped exception (see escapedErrorLines). */
export function escapedErrors(t: Target): string[] {
  const log = t.agent.log();
  const fresh = log.slice(t.logAt);
  t.logAt = log.length;
  const hits = escapedErrorLines(fresh);
  if (hits.length === 0) return hits;
  // A stack frame alone says little: the log line that opened the error (what was thrown) goes first.
  const lines = fresh.split("\n");
  const first = lines.findIndex((l) => /^\s+at .+:\d+:\d+\)?$/.test(l));
  const opener = first > 0 ? lines.slice(0, first).reverse().find((l) => !/^\s+at /.test(l)) : undefined;
  return opener && !hits.includes(opener) ? [opener.slice(0, 300), ...hits] : hits;
}
