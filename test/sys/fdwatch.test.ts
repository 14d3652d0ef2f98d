// fdReady: readiness from the poll thread. It resolves only once the fd is ready, for reading and for
// writing; an aborted wait is forgotten; hundreds of waits share the one thread (fds do not grow); an idle
// wait costs no wake-ups (a timer-driven poll, measured here as control, does); and a pending wait keeps
// the process alive as a pending read would, while an idle thread does not.
import { afterAll, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { POLLIN, POLLOUT, close, pipe, read, setNonblocking, write } from "../../src/sys/index.ts";
import { fdReady } from "../../src/sys/fdwatch.ts";

const opened: number[] = [];
afterAll(() => opened.forEach(close));

function nonblockingPipe(): { read: number; write: number } {
  const p = pipe();
  opened.push(p.read, p.write);
  setNonblocking(p.read, true);
  setNonblocking(p.write, true);
  return p;
}

/** Whether `p` has settled within `ms`. */
async function settled(p: Promise<unknown>, ms: number): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await Bun.sleep(ms);
  return done;
}

test("POLLIN: pending while the pipe is empty, POLLIN once a byte is in it", async () => {
  const p = nonblockingPipe();
  const ready = fdReady(p.read, POLLIN);
  expect(await settled(ready, 100)).toBe(false);
  write(p.write, new Uint8Array([7]));
  expect((await ready) & POLLIN).toBe(POLLIN);
  expect(read(p.read, new Uint8Array(8))).toBe(1);
});

test("POLLOUT: pending while the pipe is full, POLLOUT once the reader makes room", async () => {
  const p = nonblockingPipe();
  const chunk = new Uint8Array(65536);
  while (write(p.write, chunk) !== null);
  const ready = fdReady(p.write, POLLOUT);
  expect(await settled(ready, 100)).toBe(false);
  const sink = new Uint8Array(1 << 20);
  while (read(p.read, sink) !== null);
  expect((await ready) & POLLOUT).toBe(POLLOUT);
});

test("end of file and a closed writer are reported (POLLHUP)", async () => {
  const p = pipe();
  opened.push(p.read);
  setNonblocking(p.read, true);
  const ready = fdReady(p.read, POLLIN);
  close(p.write);
  expect((await ready) & 0x10).toBe(0x10);
  expect(read(p.read, new Uint8Array(8))).toBe(0);
});

test("an aborted wait rejects with the reason, is forgotten, and the fd can be waited on again", async () => {
  const p = nonblockingPipe();
  const ac = new AbortController();
  const first = fdReady(p.read, POLLIN, ac.signal);
  ac.abort(new Error("stop here"));
  await expect(first).rejects.toThrow("stop here");
  // Already aborted: refused at once.
  await expect(fdReady(p.read, POLLIN, ac.signal)).rejects.toThrow("stop here");
  const second = fdReady(p.read, POLLIN);
  write(p.write, new Uint8Array([1]));
  expect((await second) & POLLIN).toBe(POLLIN);
});

test("the same fd and events waited on twice at once: the second wait is refused", async () => {
  const p = nonblockingPipe();
  const ac = new AbortController();
  const first = fdReady(p.read, POLLIN, ac.signal);
  await expect(fdReady(p.read, POLLIN)).rejects.toThrow("waited on twice");
  ac.abort();
  await first.catch(() => {});
});

test("300 pipes waited on at once: each resolves for its own fd, and the process's fds do not grow", async () => {
  // Warm: the thread and its control pipe exist before counting.
  const warm = nonblockingPipe();
  const w = fdReady(warm.read, POLLIN);
  write(warm.write, new Uint8Array([1]));
  await w;
  const before = readdirSync("/proc/self/fd").length;
  const pipes = Array.from({ length: 300 }, () => {
    const p = pipe();
    setNonblocking(p.read, true);
    return p;
  });
  const waits = pipes.map((p) => fdReady(p.read, POLLIN).then(() => p.read));
  const order = pipes.map((_, i) => i).sort(() => Math.random() - 0.5);
  for (const i of order) write(pipes[i]!.write, new Uint8Array([i & 0xff]));
  expect(await Promise.all(waits)).toEqual(pipes.map((p) => p.read));
  for (const p of pipes) {
    close(p.read);
    close(p.write);
  }
  expect(readdirSync("/proc/self/fd").length).toBeLessThanOrEqual(before);
});

test("50 idle waits cost no wake-ups; the same 50 fds polled on a timer (the old way) cost a wake-up per nap", async () => {
  // Each in a fresh process: inside the test runner, what earlier test files left running woke this one
  // too (13 in one CI run, against 2..4 alone).
  const count = async (mode: string) => {
    const proc = Bun.spawn(["bun", `${import.meta.dir}/_idle-waits.ts`, mode], { stdout: "pipe", stderr: "inherit", timeout: 20_000 });
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    return Number(out.trim());
  };
  const watched = await count("watch");
  const polled = await count("poll");
  console.log(`wake-ups in 1 s with 50 idle fds: ${watched} through the poll thread, ${polled} polling every 20 ms`);
  expect(polled).toBeGreaterThan(40); // the measure sees timer polling
  expect(watched).toBeLessThan(10);
});

test("a pending wait keeps the process alive; once it resolves and nothing else is pending, the process ends", async () => {
  const script = `
    import { POLLIN, pipe, write } from "${import.meta.dir}/../../src/sys/index.ts";
    import { fdReady } from "${import.meta.dir}/../../src/sys/fdwatch.ts";
    const p = pipe();
    // An unref'd timer alone would let the process end before it fires.
    setTimeout(() => write(p.write, new Uint8Array([1])), 300).unref();
    const rev = await fdReady(p.read, POLLIN);
    console.log("ready " + rev);
  `;
  const started = performance.now();
  const proc = Bun.spawn(["bun", "-e", script], { stdout: "pipe", stderr: "pipe", timeout: 10_000 });
  const out = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  expect(out.trim()).toBe("ready 1");
  const ms = performance.now() - started;
  expect(ms).toBeGreaterThan(300);
  expect(ms).toBeLessThan(5000);
});

test("if the poll thread fails, its waiters go on by polling and still resolve; the failure is reported once", async () => {
  // poll(2) refuses more entries than RLIMIT_NOFILE (EINVAL): 150 waits (one pipe, 150 event masks) under a
  // limit of 128 make the thread fail for real.
  const script = `
    import { pipe, write } from "${import.meta.dir}/../../src/sys/index.ts";
    import { fdReady, onFdWatchFailure } from "${import.meta.dir}/../../src/sys/fdwatch.ts";
    const failures = [];
    onFdWatchFailure((e) => failures.push(e.message));
    const p = pipe();
    const waits = Array.from({ length: 150 }, (_, i) => fdReady(p.read, 1 | (i << 3)));
    await Bun.sleep(300);
    write(p.write, new Uint8Array([1]));
    const got = await Promise.all(waits);
    console.log(JSON.stringify({ resolved: got.filter((r) => r & 1).length, failures }));
  `;
  const proc = Bun.spawn(["sh", "-c", 'ulimit -n 128 && exec bun -e "$0"', script], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
  const out = await new Response(proc.stdout).text();
  const err = await new Response(proc.stderr).text();
  expect(await proc.exited).toBe(0);
  const r = JSON.parse(out);
  expect(r.resolved).toBe(150);
  expect(r.failures).toHaveLength(1);
  expect(r.failures[0]).toMatch(/fd watcher: poll: EINVAL/);
  expect(err).toBe("");
});

test("a report for an aborted wait never wakes a new wait on the same fd number (closed and reused)", async () => {
  const a = pipe();
  setNonblocking(a.read, true);
  const ac = new AbortController();
  const stale = fdReady(a.read, POLLIN, ac.signal);
  stale.catch(() => {});
  write(a.write, new Uint8Array([1]));
  // Without yielding: the thread sees the byte and posts its report, which waits in this thread's queue.
  Bun.sleepSync(50);
  ac.abort();
  const number = a.read;
  close(a.read);
  close(a.write);
  // The lowest free numbers come back: pipes are opened (and kept until the end of the file) until one's
  // read end takes the number just closed; lower numbers other tests freed are filled on the way.
  let found: { read: number; write: number } | undefined;
  for (let i = 0; i < 200 && !found; i++) {
    const p = pipe();
    if (p.write === number) {
      // The number went to a write end: give it back; the read end keeps the lower gap filled.
      close(p.write);
      opened.push(p.read);
      continue;
    }
    opened.push(p.read, p.write);
    if (p.read === number) found = p;
  }
  expect(found?.read).toBe(number);
  const b = found!;
  setNonblocking(b.read, true);
  const wait = fdReady(b.read, POLLIN);
  expect(await settled(wait, 150)).toBe(false);
  write(b.write, new Uint8Array([2]));
  expect((await wait) & POLLIN).toBe(POLLIN);
});
