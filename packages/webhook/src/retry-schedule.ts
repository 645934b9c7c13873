/** Seconds before each attempt: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
export const defaultRetrySchedule: readonly number[] = [0, 5, 300, 1800, 7200, 18000, 36000, 36000];

/** The longest `Retry-After` honoured: one day. */
const maxRetryAfterMs = 86_400_000;

/** Parses `HERALD_WEBHOOK_RETRY_SCHEDULE`: seconds, comma-separated, e.g. `0,5,300`. Throws on anything else. */
export function parseRetrySchedule(text: string): number[] {
  const schedule = text.split(',').map((part) => part.trim());
  const seconds = schedule.map(Number);
  if (schedule.length === 0 || schedule.some((part) => part === '') || seconds.some((s) => !Number.isFinite(s) || s < 0)) {
    throw new Error(`HERALD_WEBHOOK_RETRY_SCHEDULE must be seconds separated by commas, e.g. "0,5,300", not "${text}"`);
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

/** A `Retry-After` header (seconds or an HTTP date) as ms from `now`, capped at one day; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  const trimmed = text.trim();
  let ms: number;
  if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    const at = Date.parse(trimmed);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(ms, 0), maxRetryAfterMs);
}
