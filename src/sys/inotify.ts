// inotify(7): being told that a name appeared in a folder, instead of looking every few milliseconds.
import { libc } from "./_libc.ts";
import { check, checkOr } from "./_call.ts";
import { EAGAIN } from "./_errno.ts";
import { cString } from "./_cstring.ts";

export const IN_ATTRIB = 0x4;
export const IN_MOVED_TO = 0x80;
export const IN_CREATE = 0x100;
/** The watched folder went away (deleted, unmounted): no more events from this watch. */
export const IN_IGNORED = 0x8000;
/** Events were dropped: anything may have changed. */
export const IN_Q_OVERFLOW = 0x4000;
const IN_NONBLOCK = 0o4000;
const IN_CLOEXEC = 0o2000000;
/** struct inotify_event without its name: i32 wd, u32 mask, u32 cookie, u32 len. */
const EVENT_HEADER = 16;

export interface InotifyEvent {
  wd: number;
  mask: number;
  /** The name within the watched folder ("" for events on the folder itself). */
  name: string;
}

/** A non-blocking, close-on-exec inotify fd. */
export function inotifyInit(): number {
  return check("inotify_init1", () => libc().inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
}

/** Watches `path` for `mask`; the watch descriptor. Throws inotify_add_watch: ENOENT when it is not there. */
export function inotifyAddWatch(fd: number, path: string, mask: number): number {
  return check("inotify_add_watch", () => libc().inotify_add_watch(fd, cString(path), mask));
}

/** Every event queued on a non-blocking inotify fd, read until it would block. */
export function inotifyRead(fd: number): InotifyEvent[] {
  const buf = new Uint8Array(4096); // holds at least one event with the longest name (NAME_MAX 255)
  const events: InotifyEvent[] = [];
  for (;;) {
    const rc = checkOr("read", [EAGAIN], () => libc().read(fd, buf, buf.byteLength));
    if (typeof rc !== "bigint" || rc === 0n) return events;
    events.push(...parseInotifyEvents(buf.subarray(0, Number(rc))));
  }
}

/** Pure: the events in bytes read from an inotify fd (the kernel only hands out whole events). */
export function parseInotifyEvents(bytes: Uint8Array): InotifyEvent[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const events: InotifyEvent[] = [];
  for (let off = 0; off + EVENT_HEADER <= bytes.byteLength; ) {
    const len = view.getUint32(off + 12, true);
    const raw = bytes.subarray(off + EVENT_HEADER, Math.min(bytes.byteLength, off + EVENT_HEADER + len));
    const nul = raw.indexOf(0);
    events.push({ wd: view.getInt32(off, true), mask: view.getUint32(off + 4, true), name: new TextDecoder().decode(nul < 0 ? raw : raw.subarray(0, nul)) });
    off += EVENT_HEADER + len;
  }
  return events;
}
