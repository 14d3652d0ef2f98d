// Deadlines and durations are measured on a monotonic clock: Date.now() follows the wall clock, which a
// guest's NTP or RTC sync can step by hours at boot, turning a 30 s window into none or into forever.
export function monotonicMs(): number { return performance.now(); }
