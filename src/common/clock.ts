// Deadlines and durations are measured on a monotonic clock: the guest's wall clock steps (at boot when it
// is first set, under NTP, on snapshot resume), and a deadline on Date.now() would then fire at once or never.
export function monotonicMs(): number { return performance.now(); }
