import type { Delivery } from './portal-api.js';

/** One hour of an endpoint's attempts. */
export interface HealthHour {
  /** The hour's start (ms since the epoch). */
  start: number;
  attempts: number;
  succeeded: number;
  /** Median attempt duration in ms; `null` without attempts. */
  medianMs: number | null;
}

/** An endpoint's attempts over the last 24 hours, hour by hour, oldest first. */
export interface EndpointHealth {
  hours: HealthHour[];
  attempts: number;
  succeeded: number;
  /** Succeeded / attempts, 0 to 1; `null` without attempts. */
  successRate: number | null;
  medianMs: number | null;
}

const hour = 3_600_000;

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Success rate and latency of the attempts of `deliveries` made in the 24 hours before `now`. */
export function endpointHealth(deliveries: readonly Delivery[], now: number): EndpointHealth {
  const since = now - 24 * hour;
  const buckets = Array.from({ length: 24 }, (_, index) => ({ start: since + index * hour, durations: [] as number[], succeeded: 0 }));
  for (const attempt of deliveries.flatMap((delivery) => delivery.attempts)) {
    const at = attempt.startedAt === null ? Number.NaN : Date.parse(attempt.startedAt);
    if (!(at >= since && at < now)) continue;
    const bucket = buckets[Math.floor((at - since) / hour)];
    if (!bucket) continue;
    bucket.durations.push(attempt.durationMs);
    if (attempt.status === 'succeeded') bucket.succeeded += 1;
  }
  const hours = buckets.map(({ start, durations, succeeded }) => ({ start, attempts: durations.length, succeeded, medianMs: median(durations) }));
  const attempts = hours.reduce((sum, { attempts }) => sum + attempts, 0);
  const succeeded = hours.reduce((sum, { succeeded }) => sum + succeeded, 0);
  return {
    hours,
    attempts,
    succeeded,
    successRate: attempts === 0 ? null : succeeded / attempts,
    medianMs: median(buckets.flatMap(({ durations }) => durations)),
  };
}
