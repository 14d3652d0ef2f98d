// The host side of the flood test, in its own process so that its memory can be measured: connects, starts
// one execution and never reads its output, then prints how the execution ended as one JSON line.
import { connect } from "../../src/host/index.ts";

const guest = await connect(`unix:${process.argv[2]}`);
const proc = guest.exec(["flood"]);
const outcome = await proc.exited.then(
  (r) => ({ result: r }),
  (e: { code?: string; message?: string }) => ({ code: e.code, message: e.message }),
);
process.stdout.write(`${JSON.stringify(outcome)}\n`);
process.exit(0);
