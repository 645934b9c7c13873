import type { DeliveryAttempt } from '@herald/core';
import type { LookupFunction } from './address-guard.js';
import { defaultRetrySchedule, parseRetrySchedule } from './retry-schedule.js';

/** Options of {@link webhook}. Those named after an environment variable fall back to it. */
export interface WebhookOptions {
  /**
   * `HERALD_WEBHOOK_RETRY_SCHEDULE`: seconds to wait before each attempt; its length is the number of attempts.
   * @default [0, 5, 300, 1800, 7200, 18000, 36000, 36000] (at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h)
   */
  retrySchedule?: readonly number[];
  /** Each wait is moved by up to this share of it, at random, so that retries do not arrive in waves. @default 0.2 */
  jitter?: number;
  /** `HERALD_WEBHOOK_ALLOW_PRIVATE=1`: allow loopback, private and link-local targets, and http. @default false */
  allowPrivate?: boolean;
  /** How long one attempt may take, connection to last byte, in ms. @default 15000 */
  timeout?: number;
  /** How long a worker's claim on a delivery lasts, in ms (at least timeout + 2000); a dead worker's claims come back after it. @default timeout + 30000 */
  lease?: number;
  /** Requests in flight to one endpoint (one subscription) at most, on each node. @default 10 */
  concurrency?: number;
  /** A subscription whose every attempt has failed for this long, in ms, is disabled. @default 432000000 (5 days) */
  disableAfter?: number;
  /** Endpoints are sent nothing until they echo a challenge for their URL; new subscriptions stay `pending` until then. @default false */
  verifyEndpoints?: boolean;
  /** How often to look for due retries and for work left by other nodes, in ms. @default 1000 */
  pollInterval?: number;
  /** How long settled deliveries and their attempts are kept, in ms. @default 604800000 (7 days) */
  retention?: number;
  /** How long a rotated secret keeps signing next to the new one, in ms. @default 86400000 (24 h) */
  rotationGracePeriod?: number;
  /** How much of each response body is kept with the attempt, in bytes. @default 4096 */
  responseBodyBytes?: number;
  /** Resolves endpoint host names; the SSRF guard checks every address it returns. @default dns.lookup */
  lookup?: LookupFunction;
  /** Called after every attempt, e.g. for metrics. */
  onAttempt?(attempt: DeliveryAttempt): void;
}

/** The options with every default applied. */
export interface ResolvedWebhookOptions {
  retrySchedule: readonly number[];
  jitter: number;
  allowPrivate: boolean;
  timeout: number;
  lease: number;
  concurrency: number;
  disableAfter: number;
  verifyEndpoints: boolean;
  pollInterval: number;
  retention: number;
  rotationGracePeriod: number;
  responseBodyBytes: number;
  lookup?: LookupFunction;
  onAttempt?(attempt: DeliveryAttempt): void;
}

function positive(name: string, value: number, min = 1): number {
  if (!Number.isFinite(value) || value < min) throw new Error(`webhook(): ${name} must be a number of at least ${min}`);
  return value;
}

/** Reads the options, then the environment, then the defaults. Throws on values that make no sense. */
export function resolveWebhookOptions(options: WebhookOptions, env: Readonly<Record<string, string | undefined>>): ResolvedWebhookOptions {
  const retrySchedule =
    options.retrySchedule ?? (env.HERALD_WEBHOOK_RETRY_SCHEDULE ? parseRetrySchedule(env.HERALD_WEBHOOK_RETRY_SCHEDULE) : defaultRetrySchedule);
  if (retrySchedule.length === 0 || retrySchedule.some((s) => !Number.isFinite(s) || s < 0)) {
    throw new Error('webhook(): retrySchedule must list at least one wait of 0 seconds or more');
  }
  const jitter = options.jitter ?? 0.2;
  if (!(jitter >= 0 && jitter < 1)) throw new Error('webhook(): jitter must be at least 0 and below 1');
  const timeout = positive('timeout', options.timeout ?? 15_000);
  const lease = positive('lease', options.lease ?? timeout + 30_000);
  if (lease < timeout + 2_000) throw new Error('webhook(): lease must be at least 2 s longer than timeout');
  const { lookup, onAttempt } = options;
  return {
    retrySchedule,
    jitter,
    allowPrivate: options.allowPrivate ?? env.HERALD_WEBHOOK_ALLOW_PRIVATE === '1',
    timeout,
    lease,
    concurrency: Math.floor(positive('concurrency', options.concurrency ?? 10)),
    disableAfter: positive('disableAfter', options.disableAfter ?? 5 * 86_400_000),
    verifyEndpoints: options.verifyEndpoints ?? false,
    pollInterval: positive('pollInterval', options.pollInterval ?? 1000, 10),
    retention: positive('retention', options.retention ?? 7 * 86_400_000),
    rotationGracePeriod: positive('rotationGracePeriod', options.rotationGracePeriod ?? 86_400_000, 0),
    responseBodyBytes: Math.floor(positive('responseBodyBytes', options.responseBodyBytes ?? 4096, 0)),
    ...(lookup ? { lookup } : {}),
    ...(onAttempt ? { onAttempt } : {}),
  };
}
