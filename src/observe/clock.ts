// Events are stamped with CLOCK_BOOTTIME (bpf_ktime_get_boot_ns); Node has CLOCK_MONOTONIC
// (process.hrtime) and the wall clock. The two kernel clocks differ only by time spent suspended,
// which /proc/uptime (BOOTTIME, 10 ms resolution) reveals: below that resolution they are equal.
import fs from 'node:fs';

const SUSPEND_NOISE_NS = 50_000_000n;

/** Nanoseconds to add to a boot-clock timestamp to get nanoseconds since the Unix epoch. */
export function bootToEpochNs(): bigint {
  const monotonic = process.hrtime.bigint();
  const epoch = BigInt(Date.now()) * 1_000_000n;
  let boot = monotonic;
  try {
    const uptime = fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]!;
    const [s, frac = '0'] = uptime.split('.');
    const uptimeNs = BigInt(s!) * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9));
    const suspended = uptimeNs - monotonic;
    if (suspended > SUSPEND_NOISE_NS) boot = monotonic + suspended;
  } catch {
    // no /proc: assume never suspended
  }
  return epoch - boot;
}
