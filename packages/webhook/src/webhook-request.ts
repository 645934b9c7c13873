import { createSecretKey, type KeyObject } from 'node:crypto';
import { livePreviousSecrets } from './secret-rotation.js';
import type { StoredWebhookConfig } from './webhook-config.js';
import { secretKey, signedHeaders } from './webhook-signature.js';

const userAgent = 'Herald-Webhooks/0.1';

/** The header that marks a test event (`POST /v1/subscriptions/:id/test`): `herald-test: 1`. */
export const testHeader = 'herald-test';

/** A signed POST to a webhook endpoint: where, and its headers. */
export interface WebhookRequest {
  url: URL;
  headers: Record<string, string>;
}

/** What every request to one endpoint shares, worked out once per stored config. */
export interface WebhookTarget {
  url: URL;
  /** The subscription's extra static headers, names in lower case (none of them one that Herald sets, but `user-agent`). */
  extraHeaders: [string, string][];
  /** The current secret's key, alone: all that signs for an endpoint whose secret was never rotated. */
  current: readonly [KeyObject];
}

/** What every request to the endpoint of `config` shares: its URL, its static headers, its current secret's key. */
export function webhookTarget(config: StoredWebhookConfig): WebhookTarget {
  return {
    url: new URL(config.url),
    // In lower case, as Herald's own: a `User-Agent` replaces Herald's rather than going out beside it.
    extraHeaders: Object.entries(config.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
    current: [createSecretKey(secretKey(config.secret))],
  };
}

/**
 * The headers of the request that carries `body`, the JSON of the message `id`, to `target` (of `config`)
 * at `now`: its static headers and the Standard Webhooks ones, signed with the current secret and with the
 * rotated ones still in their grace period.
 */
export function webhookHeaders(target: WebhookTarget, config: StoredWebhookConfig, id: string, body: string, now: number): Record<string, string> {
  const secrets = config.previousSecrets?.length ? [...target.current, ...livePreviousSecrets(config, now).map((old) => old.secret)] : target.current;
  const signed = signedHeaders(secrets, id, Math.floor(now / 1000), body);
  // A literal, not a spread: objects of one shape keep undici's header handling on its fast path (several µs a request).
  const headers: Record<string, string> = {
    'user-agent': userAgent,
    'content-type': 'application/json',
    'webhook-id': signed['webhook-id'],
    'webhook-timestamp': signed['webhook-timestamp'],
    'webhook-signature': signed['webhook-signature'],
  };
  for (const [name, value] of target.extraHeaders) headers[name] = value;
  return headers;
}

const targets = new WeakMap<StoredWebhookConfig, WebhookTarget>();

/** The request that carries `body`, the JSON of the message `id`, to the config's endpoint at `now` (see {@link webhookHeaders}). */
export function webhookRequest(config: StoredWebhookConfig, id: string, body: string, now: number): WebhookRequest {
  let target = targets.get(config);
  if (!target) {
    target = webhookTarget(config);
    targets.set(config, target);
  }
  return { url: target.url, headers: webhookHeaders(target, config, id, body, now) };
}
