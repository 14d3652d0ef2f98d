// The receiving side of a window: what arrives is spent against the grant; an overrun is refused whole.
import { expect, test } from "bun:test";
import { Credit } from "../../src/protocol/v2/credit.ts";

test("spend takes exactly what arrived, refuses an overrun without taking anything", () => {
  const c = new Credit(100);
  expect(c.spend(60)).toBe(true);
  expect(c.available).toBe(40);
  expect(c.spend(41)).toBe(false);
  expect(c.available).toBe(40);
  expect(c.spend(40)).toBe(true);
  expect(c.spend(1)).toBe(false);
  c.add(10);
  expect(c.spend(10)).toBe(true);
  expect(c.spend(0)).toBe(true);
});

test("add refuses to go past the limit (the window it started at), taking nothing, so a lying peer is caught", () => {
  const c = new Credit(100, 100);
  expect(c.add(1)).toBe(false);
  expect(c.available).toBe(100);
  expect(c.spend(30)).toBe(true);
  expect(c.add(0xffffffff)).toBe(false);
  expect(c.add(31)).toBe(false);
  expect(c.available).toBe(70);
  expect(c.add(30)).toBe(true);
  expect(c.available).toBe(100);
  // Repeated lies never move it: the count stays exact, far below 2^53.
  for (let i = 0; i < 10_000; i++) expect(c.add(0xffffffff)).toBe(false);
  expect(c.available).toBe(100);
  expect(c.limit).toBe(100);
});

test("what a sender took and gives back unused fits, and wakes a waiter", async () => {
  const c = new Credit(10, 10);
  expect(await c.take(10)).toBe(10);
  const waiting = c.take(4);
  expect(c.add(6)).toBe(true);
  expect(await waiting).toBe(4);
  expect(c.available).toBe(2);
});

test("without a limit the count still never passes 2^53 - 1, where it would stop being exact", () => {
  const c = new Credit(0);
  for (let i = 0; i < 2_097_152; i++) c.add(0xffffffff);
  expect(c.add(0xffffffff)).toBe(false);
  expect(Number.isSafeInteger(c.available)).toBe(true);
  expect(c.available).toBe(2_097_152 * 0xffffffff);
});
