/** Seconds before each attempt: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
export const defaultRetrySchedule: readonly number[] = [0, 5, 300, 1800, 7200, 18000, 36000, 36000];

/**
 * Parses a retry schedule from the environment variable `name` (such as `HERALD_WEBHOOK_RETRY_SCHEDULE`):
 * seconds, comma-separated, e.g. `0,5,300`. Throws on anything else.
 */
export function parseRetrySchedule(text: string, name: string): number[] {
  const schedule = text.split(',').map((part) => part.trim());
  const seconds = schedule.map(Number);
  if (schedule.length === 0 || schedule.some((part) => part === '') || seconds.some((s) => !Number.isFinite(s) || s < 0)) {
    throw new Error(`${name} must be seconds separated by commas, e.g. "0,5,300", not "${text}"`);
  }
  return seconds;
}

/**
 * The wait before attempt `attempt` (1-based), in ms, with ±`jitter` of it at random; undefined when
 * the schedule has no such attempt.
 */
export function retryDelay(schedule: readonly number[], attempt: number, jitter: number, random = Math.random): number | undefined {
  const seconds = schedule[attempt - 1];
  if (seconds === undefined) return undefined;
  return Math.max(0, Math.round(seconds * 1000 * (1 + jitter * (2 * random() - 1))));
}
