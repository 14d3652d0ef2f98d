// The local terminal for a remote PTY: raw mode while it runs, the window size following SIGWINCH, and
// the terminal always put back (also when vge exits on an error).
import type { RemoteProcess } from "../../host/index.ts";
import { stdinIsTTY } from "./_stdin.ts";

export function localSize(): { cols: number; rows: number } {
  return { cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 };
}

export function localPty(): { cols: number; rows: number; term: string } {
  return { ...localSize(), term: process.env.TERM || "xterm-256color" };
}

/** Raw mode on a TTY stdin and size tracking; returns the function that undoes both. */
export function attachTerminal(proc: RemoteProcess): () => void {
  // Asked of fd 0 first: process.stdin is made only for a terminal (stdin itself is read by _stdin.ts).
  const raw = stdinIsTTY();
  const stdin = raw ? process.stdin : undefined;
  stdin?.setRawMode(true);
  const onWinch = () => {
    const { cols, rows } = localSize();
    proc.resize(cols, rows);
  };
  process.on("SIGWINCH", onWinch);
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    process.off("SIGWINCH", onWinch);
    process.off("exit", restore);
    stdin?.setRawMode(false);
  };
  process.on("exit", restore);
  return restore;
}
