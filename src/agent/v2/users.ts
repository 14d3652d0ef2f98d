// User names to ids, from the guest's own /etc/passwd (no NSS in an initrd).
import { readFileSync } from "node:fs";
import { MAX_ID } from "../../protocol/v2/messages.ts";

export interface Account {
  uid: number;
  gid: number;
  name?: string;
  home?: string;
}

export class UserError extends Error {
  constructor(
    readonly errno: string,
    message: string,
  ) {
    super(message);
  }
}

export function lookupUser(user: string, passwd = "/etc/passwd"): Account {
  let lines: string[] = [];
  try {
    lines = readFileSync(passwd, "utf8").split("\n");
  } catch {
    // No passwd file: only numeric ids can work.
  }
  const numeric = /^\d+$/.test(user) ? Number(user) : undefined;
  for (const line of lines) {
    const f = line.split(":");
    if (f.length < 7) continue;
    if (f[0] === user || (numeric !== undefined && passwdId(f[2]!) === numeric)) return checked({ name: f[0]!, uid: passwdId(f[2]!), gid: passwdId(f[3]!), home: f[5] });
  }
  if (numeric !== undefined && numeric <= MAX_ID) return { uid: numeric, gid: numeric };
  throw new UserError("ENOENT", `no such user: ${user}`);
}

/** A uid or gid field: decimal digits only. Number() would read "" and " " as 0 (root) and "0x10" as 16. */
function passwdId(field: string): number {
  return /^\d{1,10}$/.test(field) ? Number(field) : NaN;
}

/** An id from /etc/passwd that is not 0..MAX_ID (4294967295 is "no change" to setuid/chown, NaN is garbage) runs nothing. */
function checked(a: Account & { name: string }): Account {
  for (const id of [a.uid, a.gid]) if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new UserError("EINVAL", `user ${a.name} has an invalid id in /etc/passwd`);
  return a;
}
