// Deadlines and elapsed times are measured on a monotonic clock: the wall clock (Date.now) steps when a
// guest boots without an RTC, when NTP corrects it, or when a snapshot resumes, and a deadline on it then
// ends early or never.
export function monotonicMs(): number { return performance.now(); }
