import { isStorableText } from '@herald/core';
import type { Delivery, DeliveryAttempt, DeliveryStatus, NewDelivery, SettledAttempt } from './outbox.js';
import { retryDelay } from './retry-schedule.js';

/** What came of one attempt, as a push transport's `send` tells it. */
export interface PushResult {
  /** The destination took the message (an HTTP 2xx, a broker's confirm): the delivery is done. */
  delivered: boolean;
  /** Why it was not delivered, in words a consumer understands: kept with the attempt. @default 'the attempt failed' */
  error?: string;
  /** The status the destination answered with (an HTTP status), kept with the attempt when it is a whole number from 0 to 2³¹ − 1. */
  responseStatus?: number;
  /** The start of the destination's answer (a few KiB at most), kept with the attempt. */
  responseBody?: string;
  /**
   * Try again after this many ms rather than the schedule's wait, while the schedule has attempts left
   * (HTTP `Retry-After`): at most {@link maxRetryAfter}; ignored unless a number from 0 up.
   */
  retryAfter?: number;
  /** No attempt will ever deliver it: the delivery fails now, without the attempts left in the schedule. */
  final?: boolean;
  /** The destination is gone for good (HTTP 410): the delivery fails now and the subscription is disabled, with this reason. */
  disable?: string;
}

/** The longest wait a {@link PushResult.retryAfter} asks for that is honoured, in ms: one day. */
export const maxRetryAfter = 86_400_000;

/** The largest status an attempt keeps: the store's column is a 32-bit integer. */
const maxResponseStatus = 2 ** 31 - 1;

/** How failed attempts are tried again. */
export interface RetryPolicy {
  /** Seconds before each attempt. */
  retrySchedule: readonly number[];
  /** The share of each wait moved at random. */
  jitter: number;
}

/**
 * `text` from outside (a destination's answer, an error's message) as every store can keep it (see
 * `isStorableText`): one U+0000 in an attempt would fail, on PostgreSQL, the commit of every attempt with
 * it. Each becomes U+FFFD, as an undecodable byte does.
 */
export function storableText(text: string): string {
  return isStorableText(text) ? text : text.replaceAll('\0', '\uFFFD');
}

/** Why the attempt of `result` failed, as kept with it. */
export function attemptError(result: PushResult): string {
  return storableText(result.error ?? 'the attempt failed');
}

/** The attempt `delivery.attempts` of `delivery`, started at `startedAt`, with `result`; no error or next attempt on it yet. */
export function attemptOf(delivery: Delivery, startedAt: number, durationMs: number, result: PushResult): DeliveryAttempt {
  const attempt: DeliveryAttempt = {
    deliveryId: delivery.id,
    subscriptionId: delivery.subscriptionId,
    attempt: delivery.attempts,
    startedAt,
    durationMs: Math.round(durationMs),
    outcome: result.delivered ? 'succeeded' : 'failed',
  };
  const status = result.responseStatus;
  // A transport's numbers are checked as a request's are: one the store cannot keep would fail the commit of every attempt with it.
  if (status !== undefined && Number.isInteger(status) && status >= 0 && status <= maxResponseStatus) attempt.responseStatus = status;
  if (result.responseBody !== undefined) attempt.responseBody = storableText(result.responseBody);
  return attempt;
}

/**
 * The attempt `delivery.attempts` of `delivery`, started at `startedAt`, with `result`, and the state it
 * leaves the delivery in at `now`: delivered; failed (when the result says so, or the schedule has no
 * attempt left); or pending, due after `retryAfter` or the schedule's next wait. `held`: the delivery,
 * when a fan-out held it and its row is made with this attempt.
 */
export function settledAttempt(
  delivery: Delivery,
  held: NewDelivery | undefined,
  startedAt: number,
  durationMs: number,
  result: PushResult,
  retry: RetryPolicy,
  now: number,
): SettledAttempt {
  const attempt = attemptOf(delivery, startedAt, durationMs, result);
  let status: DeliveryStatus = 'delivered';
  if (!result.delivered) {
    const error = attemptError(result);
    const scheduled = result.final || result.disable !== undefined ? undefined : retryDelay(retry.retrySchedule, delivery.attempts + 1, retry.jitter);
    if (scheduled !== undefined) {
      status = 'pending';
      attempt.error = error;
      attempt.nextAttemptAt = now + (honouredRetryAfter(result.retryAfter) ?? scheduled);
    } else {
      status = 'failed';
      attempt.error = result.final || result.disable !== undefined ? error : `${error}; gave up after ${delivery.attempts} attempts`;
    }
  }
  return held ? { attempt, status, held } : { attempt, status };
}

function honouredRetryAfter(ms: number | undefined): number | undefined {
  return ms !== undefined && ms >= 0 ? Math.round(Math.min(ms, maxRetryAfter)) : undefined;
}
