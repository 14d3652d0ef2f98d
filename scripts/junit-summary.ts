// Reads bun's junit report and prints the closing line CI reads: "N passed, N failed, N skipped".
// Exits non-zero when anything failed or when no test ran at all.
export {};
const path = process.argv[2] ?? "test-results/junit.xml";
const file = Bun.file(path);
if (!(await file.exists())) {
  console.error(`junit-summary: ${path} is missing: the test run did not finish`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}
const xml = await file.text();
const root = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? "";
const attr = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(root)?.[1] ?? 0);
const tests = attr("tests");
const failed = attr("failures") + attr("errors");
const skipped = attr("skipped");
const passed = tests - failed - skipped;
for (const m of xml.matchAll(/<testcase name="([^"]*)"[^>]*file="([^"]*)"[^>]*>\s*<skipped/g)) console.log(`skipped: ${m[2]}: ${m[1]}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || tests === 0 ? 1 : 0);
