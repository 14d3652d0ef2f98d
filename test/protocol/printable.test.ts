// Escaping guest text for a terminal: every control character becomes visible text, printable text stays.
import { expect, test } from "bun:test";
import { printable, printableJson, printableLines } from "../../src/protocol/index.ts";

test("C0, DEL, C1, separators and bidi controls are escaped; ESC shows as \\e", () => {
  expect(printable("a\x1b[31mb\x07c\rd\ne\tf\x00g\x7fh\u009bi\u2028j\u202ek\u2066l")).toBe("a\\e[31mb\\x07c\\rd\\ne\\tf\\x00g\\x7fh\\x9bi\\u2028j\\u202ek\\u2066l");
  const all = Array.from({ length: 0xa0 }, (_, i) => String.fromCharCode(i)).join("");
  expect(printable(all, Infinity)).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
});

test("printable text, including non-ASCII and backslashes, is unchanged", () => {
  expect(printable("héllo wörld ✓ 日本 \\e [31m")).toBe("héllo wörld ✓ 日本 \\e [31m");
});

test("long text is cut, with the count of what was dropped", () => {
  expect(printable("x".repeat(10), 4)).toBe("xxxx... (6 more characters)");
  expect(printable("\x1b".repeat(2000)).length).toBeLessThan(2 * 1024 + 40);
});

test("printableLines keeps newlines only; printableJson parses back to the same value", () => {
  expect(printableLines("a\x1b\nb\rc")).toBe("a\\e\nb\\rc");
  const v = { s: "a\x1b\u009b\u202e\x7f\u2028" };
  const json = printableJson(v);
  expect(json).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u202e]/);
  expect(JSON.parse(json)).toEqual(v);
});
