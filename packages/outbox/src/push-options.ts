import { privateTargetsAllowed } from './address-guard.js';
import type { DeliveryAttempt, Outbox } from './outbox.js';
import { defaultRetrySchedule } from './retry-schedule.js';

/** How a push transport's deliveries are made: every transport built with `definePushTransport` takes these. */
export interface PushOptions {
  /**
   * Seconds to wait before each attempt; its length is the number of attempts.
   * @default [0, 5, 300, 1800, 7200, 18000, 36000, 36000] (at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h)
   */
  retrySchedule?: readonly number[];
  /** Each wait is moved by up to this share of it, at random, so that retries do not arrive in waves. @default 0.2 */
  jitter?: number;
  /** How long one attempt may take, in ms: the transport's `send` ends within it. @default 15000 */
  timeout?: number;
  /** How long a worker's claim on a delivery, or on a replay it runs, lasts, in ms (at least timeout + 2000); a dead worker's claims come back after it. @default timeout + 30000 */
  lease?: number;
  /** Deliveries in flight to one destination (one subscription) at most, on each node. @default 10 */
  concurrency?: number;
  /** A subscription whose every attempt has failed for this long, in ms, is disabled. @default 432000000 (5 days) */
  disableAfter?: number;
  /** How often to look for due retries and for work left by other nodes, in ms. @default 1000 */
  pollInterval?: number;
  /** How long final deliveries and their attempts are kept, in ms. @default 604800000 (7 days) */
  retention?: number;
  /**
   * `HERALD_ALLOW_PRIVATE=1` (or its alias `HERALD_WEBHOOK_ALLOW_PRIVATE=1`): destinations may be loopback,
   * private and link-local addresses, which the address guard refuses otherwise. For development.
   * @default false
   */
  allowPrivate?: boolean;
  /** Called after every attempt, e.g. for metrics. */
  onAttempt?(attempt: DeliveryAttempt): void;
  /** Where deliveries are kept. @default the SQL outbox on the server's store (`sqlOutbox`) */
  outbox?: Outbox;
}

/** The options with every default applied. */
export interface ResolvedPushOptions {
  retrySchedule: readonly number[];
  jitter: number;
  timeout: number;
  lease: number;
  concurrency: number;
  disableAfter: number;
  pollInterval: number;
  retention: number;
  allowPrivate: boolean;
  onAttempt?(attempt: DeliveryAttempt): void;
  outbox?: Outbox;
}

/** `value` when it is a number of at least `min`; else throws, naming the transport's factory and the option (`webhook(): timeout ...`). */
export function atLeast(name: string, option: string, value: number, min = 1): number {
  if (!Number.isFinite(value) || value < min) throw new Error(`${name}(): ${option} must be a number of at least ${min}`);
  return value;
}

/**
 * Applies the environment (`HERALD_ALLOW_PRIVATE`) and the defaults; throws, naming the transport's factory
 * (`webhook(): ...`), on values that make no sense.
 */
export function resolvePushOptions(name: string, options: PushOptions, env: Readonly<Record<string, string | undefined>> = {}): ResolvedPushOptions {
  const positive = (option: string, value: number, min = 1) => atLeast(name, option, value, min);
  const retrySchedule = options.retrySchedule ?? defaultRetrySchedule;
  if (retrySchedule.length === 0 || retrySchedule.some((s) => !Number.isFinite(s) || s < 0)) {
    throw new Error(`${name}(): retrySchedule must list at least one wait of 0 seconds or more`);
  }
  const jitter = options.jitter ?? 0.2;
  if (!(jitter >= 0 && jitter < 1)) throw new Error(`${name}(): jitter must be at least 0 and below 1`);
  const timeout = positive('timeout', options.timeout ?? 15_000);
  const lease = positive('lease', options.lease ?? timeout + 30_000);
  if (lease < timeout + 2_000) throw new Error(`${name}(): lease must be at least 2 s longer than timeout`);
  const { onAttempt, outbox } = options;
  return {
    retrySchedule,
    jitter,
    timeout,
    lease,
    concurrency: Math.floor(positive('concurrency', options.concurrency ?? 10)),
    disableAfter: positive('disableAfter', options.disableAfter ?? 5 * 86_400_000),
    pollInterval: positive('pollInterval', options.pollInterval ?? 1000, 10),
    retention: positive('retention', options.retention ?? 7 * 86_400_000),
    allowPrivate: privateTargetsAllowed(options.allowPrivate, env),
    ...(onAttempt ? { onAttempt } : {}),
    ...(outbox ? { outbox } : {}),
  };
}
