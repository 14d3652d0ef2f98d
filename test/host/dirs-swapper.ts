// A hostile local user of a copy's target tree, as its own process: it swaps a directory of the target for
// a symlink to a "victim" directory outside it while a directory copy writes there.
//   bun dirs-swapper.ts once   DIR VICTIM MS  — on the first file that lands in DIR (inotify, through
//                                               fs.watch), DIR is moved aside and a symlink to VICTIM put in its place.
//   bun dirs-swapper.ts toggle DIR VICTIM MS  — as fast as it can, DIR is moved aside and back, a symlink
//                                               to VICTIM in its place in between.
// Either way it stops by itself after MS milliseconds (or on SIGTERM), leaves DIR a real directory again
// for "toggle", prints how many swaps it made, and exits. It prints "ready" once it watches or runs.
import { readdirSync, renameSync, symlinkSync, unlinkSync, watch } from "node:fs";

const [mode, dir, victim, ms] = process.argv.slice(2);
if (!dir || !victim || !ms || (mode !== "once" && mode !== "toggle")) {
  console.error("usage: dirs-swapper.ts once|toggle DIR VICTIM MS");
  process.exit(2);
}
const deadline = Date.now() + Number(ms);
let swaps = 0;
let stopping = false;
process.on("SIGTERM", () => (stopping = true));
const done = () => {
  console.log(JSON.stringify({ swaps }));
  process.exit(0);
};

if (mode === "once") {
  const w = watch(dir, (_event, name) => {
    // A temporary name is not yet a landed file: the swap comes once the first file is in place, and at
    // a moment when no file is half-written in DIR (a copy that resolved paths anew would then follow
    // the symlink for the whole rest of the tree, rather than fail on the one file caught in between).
    if (!name || String(name).includes(".vge-")) return;
    w.close();
    while (readdirSync(dir).some((n) => n.includes(".vge-")) && Date.now() < deadline) {}
    renameSync(dir, `${dir}.moved`);
    symlinkSync(victim, dir);
    swaps++;
    done();
  });
  setTimeout(done, Number(ms));
  process.on("SIGTERM", done);
  console.log("ready");
} else {
  // Synchronous on purpose: the window between the moves is as short as the kernel makes it. Control
  // returns to the event loop between bursts, so SIGTERM is seen.
  const burst = () => {
    for (let i = 0; i < 200; i++) {
      const moved = `${dir}.moved${swaps}`;
      try {
        renameSync(dir, moved);
        symlinkSync(victim, dir);
      } catch {
        continue; // the copy has not made it yet, or has just made a new one
      }
      swaps++;
      try {
        unlinkSync(dir);
        renameSync(moved, dir);
      } catch {
        // the copy made a new directory there meanwhile: this one stays moved aside
      }
    }
    if (stopping || Date.now() > deadline) done();
    setImmediate(burst);
  };
  console.log("ready");
  burst();
}
