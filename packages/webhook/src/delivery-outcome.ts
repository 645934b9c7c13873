import type { DeliveryStatus } from '@herald/core';
import type { SendResult } from './http-sender.js';
import { parseRetryAfter, retryDelay } from './retry-schedule.js';

/** What an attempt's result means for its delivery. */
export interface Outcome {
  status: DeliveryStatus;
  /** When to try again, for `pending`. */
  nextAttemptAt?: number;
  /** Why the attempt failed. */
  error?: string;
  /** Why the subscription must be disabled now. */
  disable?: string;
}

/**
 * 2xx is delivered. 410 fails the delivery and disables the subscription. Anything else is retried on
 * the schedule (after `Retry-After` instead, on 429 and 503) until the schedule runs out.
 */
export function outcomeOf(
  result: SendResult,
  attempt: number,
  schedule: readonly number[],
  jitter: number,
  now: number,
): Outcome {
  const { status } = result;
  if (status !== undefined && status >= 200 && status < 300) return { status: 'delivered' };
  if (status === 410) {
    return { status: 'failed', error: 'the endpoint answered 410 Gone', disable: 'the endpoint answered 410 Gone' };
  }
  const error =
    status === undefined
      ? (result.error ?? 'no answer')
      : status >= 300 && status < 400
        ? `the endpoint answered ${status} (redirects are not followed)`
        : `the endpoint answered ${status}`;
  const afterHeader = status === 429 || status === 503 ? parseRetryAfter(result.retryAfter, now) : undefined;
  const scheduled = retryDelay(schedule, attempt + 1, jitter);
  if (scheduled === undefined) return { status: 'failed', error: `${error}; gave up after ${attempt} attempts` };
  return { status: 'pending', nextAttemptAt: now + (afterHeader ?? scheduled), error };
}
