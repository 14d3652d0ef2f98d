// ConnSlots (listen mode's --max-conns) as a unit: who makes room for a newcomer, and the count.
import { expect, test } from "bun:test";
import { ConnSlots, type Slot } from "../../src/agent/conn-slots.ts";

/** A connection as the slots see it, with what happened to it. */
function conn(name: string, log: string[], spoke = false) {
  const c = { name, spoke, hasSpoken: () => c.spoke, evict: () => log.push(name) };
  return c;
}

test("up to max: everyone admitted; then the oldest silent one makes room, then the oldest that spoke", () => {
  const s = new ConnSlots(3);
  const evicted: string[] = [];
  const a = s.admit(conn("a", evicted, true))!;
  s.admit(conn("b", evicted));
  s.admit(conn("c", evicted));
  expect(s.inUse).toBe(3);
  expect(evicted).toEqual([]);
  s.admit(conn("d", evicted, true)); // b: the oldest that has sent nothing
  s.admit(conn("e", evicted, true)); // c
  s.admit(conn("f", evicted)); // all spoke now: the oldest, a
  expect(evicted).toEqual(["b", "c", "a"]);
  expect(s.inUse).toBe(3);
  // An evicted slot's own release (its session ending later) gives nothing back twice.
  a.release();
  expect(s.inUse).toBe(3);
});

test("greeted slots are never taken: with all greeted the newcomer is refused; a release makes room", () => {
  const s = new ConnSlots(2);
  const evicted: string[] = [];
  const slots: Slot[] = [s.admit(conn("a", evicted))!, s.admit(conn("b", evicted))!];
  for (const x of slots) x.greeted();
  expect(s.admit(conn("c", evicted))).toBeUndefined();
  expect(evicted).toEqual([]);
  slots[0]!.release();
  slots[0]!.release(); // twice: once counted
  expect(s.inUse).toBe(1);
  expect(s.admit(conn("d", evicted))).toBeDefined();
  expect(s.admit(conn("e", evicted))).toBeDefined(); // d, in its hello, made room
  expect(evicted).toEqual(["d"]);
  expect(s.inUse).toBe(2);
});

test("a flood of 100,000 through 64 slots: the count stays at 64 and one greeted slot survives it", () => {
  const s = new ConnSlots(64);
  const evicted: string[] = [];
  const keeper = s.admit(conn("keeper", evicted))!;
  keeper.greeted();
  for (let i = 0; i < 100_000; i++) s.admit(conn(String(i), evicted));
  expect(s.inUse).toBe(64);
  expect(evicted.length).toBe(100_000 - 63);
  expect(evicted).not.toContain("keeper");
});
