// vge run --detach, ps, attach and kill against the real agent: the job outlives the vge that started it,
// ps lists it while it runs and after it ended, attach streams every byte and exits with its status.
import { expect, test } from "bun:test";
import { vge, vgeAgent, vgeLines } from "./_vge.ts";

const fx = vgeAgent("vge-cli-detach-");
const ADDR = fx.addr;
const seq = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join("");

test("run --detach prints the tag and returns at once; ps lists it running; attach streams every byte and exits with its status; ps shows the result", async () => {
  const started = await vge(["run", "--detach", "counter", ADDR, "--", "sh", "-c", "for i in $(seq 1 150); do echo $i; sleep 0.01; done; exit 5"]);
  expect(started.code).toBe(0);
  expect(started.stdout).toBe("counter\n");
  expect(vgeLines(started.stderr).join("\n")).toMatch(/job %\d+ \(counter\) runs detached/);
  expect(started.ms).toBeLessThan(1500 + 1000); // far less than the job's 1.5 s and more: it did not wait

  const ps = await vge(["ps", ADDR]);
  expect(ps.code).toBe(0);
  const line = ps.stdout.split("\n").find((l) => l.includes("counter"))!;
  expect(line).toMatch(/^%\d+\s+counter\s+\d+\s+\S+ \S+\s+running\s+\S+\s+sh -c for i in/);
  const json = JSON.parse((await vge(["ps", ADDR, "--json"])).stdout);
  expect(json.find((j: { tag: string }) => j.tag === "counter")).toMatchObject({ state: "running", argv: ["sh", "-c", expect.any(String)] });

  const att = await vge(["attach", ADDR, "counter"]);
  expect(att.stdout).toBe(seq(150));
  expect(att.code).toBe(5);

  const after = await vge(["ps", ADDR]);
  expect(after.stdout.split("\n").find((l) => l.includes("counter"))).toMatch(/exited 5|code 5|status 5/);
  // Attached again after the end: what is kept, and the same status.
  const again = await vge(["attach", ADDR, `%${json.find((j: { tag: string }) => j.tag === "counter").job}`]);
  expect(again.stdout).toBe(seq(150));
  expect(again.code).toBe(5);
}, 30_000);

test("attach says how much was dropped when the output outgrew --keep", async () => {
  const r = await vge(["run", "--detach", "big", "--keep", "1K", ADDR, "--", "seq", "1", "5000"]);
  expect(r.code).toBe(0);
  await Bun.sleep(500);
  const att = await vge(["attach", ADDR, "big"]);
  const all = seq(5000);
  expect(att.stdout).toBe(all.slice(all.length - 1024));
  expect(vgeLines(att.stderr).join("\n")).toContain(`${all.length - 1024} bytes of stdout were dropped`);
  expect(att.code).toBe(0);
});

test("kill signals a running job (ps then shows the signal); an unknown tag is exit 1 with one line; bad input is exit 2", async () => {
  expect((await vge(["run", "--detach", "sleeper", ADDR, "--", "sleep", "30"])).code).toBe(0);
  const k = await vge(["kill", ADDR, "sleeper", "--signal", "KILL"]);
  expect(k.code).toBe(0);
  await Bun.sleep(300);
  expect((await vge(["ps", ADDR])).stdout.split("\n").find((l) => l.includes("sleeper"))).toMatch(/SIGKILL/);
  const none = await vge(["kill", ADDR, "nosuch"]);
  expect(none.code).toBe(1);
  expect(vgeLines(none.stderr)).toHaveLength(1);
  expect(none.stderr).toContain('"nosuch"');
  const att = await vge(["attach", ADDR, "nosuch"]);
  expect(att.code).toBe(255);
  expect(vgeLines(att.stderr)).toHaveLength(1);
  for (const bad of [["attach", ADDR, "bad tag"], ["kill", ADDR, "x", "--signal", "FOO"], ["run", "--detach", "%1", ADDR, "--", "true"], ["run", "--detach", "t", "--keep", "65M", ADDR, "--", "true"], ["run", "--keep", "1K", ADDR, "--", "true"]]) {
    const r = await vge(bad);
    expect(r.code, bad.join(" ")).toBe(2);
    expect(vgeLines(r.stderr)).toHaveLength(1);
  }
  // A running tag cannot be taken twice.
  expect((await vge(["run", "--detach", "twice", ADDR, "--", "sleep", "30"])).code).toBe(0);
  const dup = await vge(["run", "--detach", "twice", ADDR, "--", "true"]);
  expect(dup.code).toBe(1);
  expect(dup.stderr).toContain("EEXIST");
  await vge(["kill", ADDR, "twice", "-s", "KILL"]);
}, 30_000);

test("run --detach --open-stdin: the job waits on an open stdin; attach --stdin feeds it and its end closes it", async () => {
  const started = await vge(["run", "--detach", "reader", "--open-stdin", ADDR, "--", "sh", "-c", "read first; echo got $first; cat | wc -l"]);
  expect(started.code).toBe(0);
  await Bun.sleep(300);
  // Still waiting for its first line: nobody has written, and nobody closed its stdin.
  expect((await vge(["ps", ADDR])).stdout.split("\n").find((l) => l.includes("reader"))).toMatch(/running/);
  const input = "hello\n" + "x\n".repeat(999);
  const att = await vge(["attach", ADDR, "reader", "--stdin"], { stdin: input });
  expect(att.stdout.split("\n").map((l) => l.trim())).toEqual(["got hello", "999", ""]);
  expect(att.code).toBe(0);
  // Without --open-stdin the job's stdin is closed: read gets EOF at once.
  expect((await vge(["run", "--detach", "closed", ADDR, "--", "sh", "-c", "read x || echo eof"])).code).toBe(0);
  await Bun.sleep(300);
  expect((await vge(["attach", ADDR, "closed"])).stdout).toBe("eof\n");
  expect((await vge(["run", "--open-stdin", ADDR, "--", "true"])).code).toBe(2);
});
