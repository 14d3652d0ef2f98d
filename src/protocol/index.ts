// The wire formats, as pure functions over bytes: the original two and v2.
export * from "./legacy.ts";
export * from "./v2/frame.ts";
export * from "./v2/decoder.ts";
export * from "./v2/messages.ts";
export * from "./printable.ts";
export * from "./v2/dirs.ts";
