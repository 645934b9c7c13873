import type { PushResult } from '@herald/outbox';
import type { SendResult } from './http-sender.js';
import { parseRetryAfter } from './retry-after.js';

/**
 * What an endpoint's answer means: 2xx is delivered; 410 fails the delivery and disables the
 * subscription; anything else is retried on the schedule, after `Retry-After` instead on 429 and 503.
 */
export function webhookOutcome(result: SendResult, now: number): PushResult {
  const { status, body } = result;
  if (status === undefined) return { delivered: false, error: result.error ?? 'no answer' };
  if (status >= 200 && status < 300) return { delivered: true, responseStatus: status, responseBody: body };
  if (status === 410) {
    const gone = 'the endpoint answered 410 Gone';
    return { delivered: false, responseStatus: status, responseBody: body, error: gone, disable: gone };
  }
  const error = status >= 300 && status < 400 ? `the endpoint answered ${status} (redirects are not followed)` : `the endpoint answered ${status}`;
  const retryAfter = status === 429 || status === 503 ? parseRetryAfter(result.retryAfter, now) : undefined;
  return { delivered: false, responseStatus: status, responseBody: body, error, retryAfter };
}
