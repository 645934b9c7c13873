import { readFileSync } from 'node:fs';

/**
 * How long, in ms, the event loop's thread has waited for a CPU since it started: Linux's
 * `/proc/self/schedstat` (0 where there is no such file). On a loaded machine a process waits its turn
 * for a CPU; that is the machine's delay, not one the code under test caused, so measurements of the
 * event loop subtract it.
 */
export function cpuWaitMs(): number {
  try {
    return Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return 0;
  }
}

/**
 * The longest the event loop was held up while `work` ran, in ms: the longest gap between the ticks of
 * a 5 ms timer, less 5 ms and less the time the thread waited for a CPU meanwhile.
 */
export async function longestStall<T>(work: () => Promise<T>): Promise<{ result: T; stall: number }> {
  let last = performance.now();
  let waited = cpuWaitMs();
  let longest = 0;
  const tick = () => {
    const now = performance.now();
    const waitedNow = cpuWaitMs();
    longest = Math.max(longest, now - last - 5 - (waitedNow - waited));
    last = now;
    waited = waitedNow;
  };
  const timer = setInterval(tick, 5);
  try {
    const result = await work();
    await new Promise((resolve) => setTimeout(resolve, 10));
    tick();
    return { result, stall: longest };
  } finally {
    clearInterval(timer);
  }
}
