// A NUL-terminated copy of a string for a libc call; a NUL inside would silently cut it short.
export function cString(s: string | Uint8Array): Uint8Array {
  const bytes = typeof s === "string" ? new TextEncoder().encode(s) : s;
  if (bytes.includes(0)) throw new RangeError("argument contains a NUL byte");
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
