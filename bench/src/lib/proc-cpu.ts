import { readFileSync } from 'node:fs';

/** Linux's clock ticks per second (USER_HZ), the unit of the CPU times in /proc. */
const ticksPerSecond = 100;

/**
 * The CPU seconds (user + system, in 10 ms steps) of a /proc `stat` file: a process's (`/proc/<pid>/stat`)
 * or a thread's (`/proc/<pid>/task/<tid>/stat`); undefined where there is none (not Linux, or gone).
 */
export function procCpuSeconds(statFile: string): number | undefined {
  try {
    const stat = readFileSync(statFile, 'utf8');
    // utime and stime, the 14th and 15th fields; the second field, the name in parentheses, may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

/**
 * The CPU time this process's main thread has used, in µs; undefined where /proc has none. Unlike
 * `process.cpuUsage()` it leaves out V8's garbage-collection threads and libuv's pool: what a
 * single-threaded server is bound by.
 */
export function mainThreadCpu(): number | undefined {
  const seconds = procCpuSeconds(`/proc/self/task/${process.pid}/stat`);
  return seconds === undefined ? undefined : seconds * 1e6;
}

/** Main-thread CPU per unit of work since `before` (a {@link mainThreadCpu} reading), in µs. */
export function mainThreadCpuPer(before: number | undefined, units: number): number | undefined {
  const after = mainThreadCpu();
  return before === undefined || after === undefined ? undefined : (after - before) / units;
}
