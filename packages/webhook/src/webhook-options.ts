import { atLeast, type LookupFunction, type PushOptions, parseRetrySchedule, type ResolvedPushOptions, resolvePushOptions } from '@herald/outbox';

/** Options of {@link webhook}: those of every push transport, and the webhook's own. Those named after an environment variable fall back to it. */
export interface WebhookOptions extends PushOptions {
  /**
   * `HERALD_WEBHOOK_RETRY_SCHEDULE`: seconds to wait before each attempt; its length is the number of attempts.
   * @default [0, 5, 300, 1800, 7200, 18000, 36000, 36000] (at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h)
   */
  retrySchedule?: readonly number[];
  /** `HERALD_ALLOW_PRIVATE=1` (or `HERALD_WEBHOOK_ALLOW_PRIVATE=1`): allow loopback, private and link-local targets, and http. @default false */
  allowPrivate?: boolean;
  /** Endpoints are sent nothing until they echo a challenge for their URL; new subscriptions stay `pending` until then. @default false */
  verifyEndpoints?: boolean;
  /** How long a rotated secret keeps signing next to the new one, in ms. @default 86400000 (24 h) */
  rotationGracePeriod?: number;
  /** How much of each response body is kept with the attempt, in bytes. @default 4096 */
  responseBodyBytes?: number;
  /** Resolves endpoint host names; the SSRF guard checks every address it returns. @default dns.lookup */
  lookup?: LookupFunction;
}

/** The options with every default applied. */
export interface ResolvedWebhookOptions extends ResolvedPushOptions {
  verifyEndpoints: boolean;
  rotationGracePeriod: number;
  responseBodyBytes: number;
  lookup?: LookupFunction;
}

/** Reads the options, then the environment, then the defaults. Throws on values that make no sense. */
export function resolveWebhookOptions(options: WebhookOptions, env: Readonly<Record<string, string | undefined>>): ResolvedWebhookOptions {
  const scheduled = env.HERALD_WEBHOOK_RETRY_SCHEDULE;
  const retrySchedule = options.retrySchedule ?? (scheduled ? parseRetrySchedule(scheduled, 'HERALD_WEBHOOK_RETRY_SCHEDULE') : undefined);
  const { lookup } = options;
  return {
    ...resolvePushOptions('webhook', { ...options, ...(retrySchedule ? { retrySchedule } : {}) }, env),
    verifyEndpoints: options.verifyEndpoints ?? false,
    rotationGracePeriod: atLeast('webhook', 'rotationGracePeriod', options.rotationGracePeriod ?? 86_400_000, 0),
    responseBodyBytes: Math.floor(atLeast('webhook', 'responseBodyBytes', options.responseBodyBytes ?? 4096, 0)),
    ...(lookup ? { lookup } : {}),
  };
}
