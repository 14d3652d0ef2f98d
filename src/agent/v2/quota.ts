// A count of things open at once with a ceiling: executions, PTYs, file requests, connections.
import { DEFAULT_LIMITS, type Limits } from "../limits.ts";

export class Quota {
  private used = 0;
  constructor(readonly max: number) {}

  get inUse(): number {
    return this.used;
  }

  /** Takes one unit; false (nothing taken) when all are in use. */
  take(): boolean {
    if (this.used >= this.max) return false;
    this.used++;
    return true;
  }

  give(): void {
    if (this.used > 0) this.used--;
  }
}

/** The agent-wide quotas, shared by every connection of this process. */
export interface SharedQuotas {
  execs: Quota;
  ptys: Quota;
}

let shared: SharedQuotas | undefined;

/** The process's shared quotas, made on first use from the configured limits. */
export function sharedQuotas(limits: Limits = DEFAULT_LIMITS): SharedQuotas {
  shared ??= { execs: new Quota(limits.execs), ptys: new Quota(limits.ptys) };
  return shared;
}
