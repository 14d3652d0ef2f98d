// The control records fdwatch.ts writes to its poll thread: i32 fd, i16 events, i16 op, u32 wait, little-endian.
// `wait` names one fdReady call: the thread reports it back, so a report that crossed an abort in flight
// can never wake a later wait on the same fd number (closed and reused meanwhile).
export const RECORD_SIZE = 12;
export const OP_QUIT = 0;
export const OP_ADD = 1;
export const OP_REMOVE = 2;

export function encodeRecord(fd: number, events: number, op: number, wait: number): Uint8Array {
  const rec = new Uint8Array(RECORD_SIZE);
  const view = new DataView(rec.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, events, true);
  view.setInt16(6, op, true);
  view.setUint32(8, wait, true);
  return rec;
}
