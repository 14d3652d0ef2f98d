// Detached-job steps for the agent tests that speak v2 through V2Host: LIST across its pages, ATTACH with
// the job's stdin credit (PROTOCOL.md §5.1), and the text a follower received.
import { T } from "../../../src/protocol/v2/frame.ts";
import { V2Host, json, type Json } from "./_host.ts";

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
