import { readFileSync } from 'node:fs';

/** Linux's clock ticks per second (USER_HZ), the unit of the CPU times in /proc. */
const ticksPerSecond = 100;

/**
 * The CPU time this process's main thread has used, in µs (in 10 ms steps), from /proc; undefined where
 * there is none. Unlike `process.cpuUsage()` it leaves out V8's garbage-collection threads and libuv's pool:
 * what a single-threaded server is bound by.
 */
export function mainThreadCpu(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    // utime and stime, the 14th and 15th fields; the second field, the name in parentheses, may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

/** Main-thread CPU per unit of work since `before` (a {@link mainThreadCpu} reading), in µs. */
export function mainThreadCpuPer(before: number | undefined, units: number): number | undefined {
  const after = mainThreadCpu();
  return before === undefined || after === undefined ? undefined : (after - before) / units;
}
