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
