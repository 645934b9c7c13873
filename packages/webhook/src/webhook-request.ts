import { createSecretKey, type KeyObject } from 'node:crypto';
import type { StoredWebhookConfig } from './webhook-config.js';
import { secretKey, signedHeaders } from './webhook-signature.js';

const userAgent = 'Herald-Webhooks/0.1';

/** A signed POST to a webhook endpoint: where, and its headers. */
export interface WebhookRequest {
  url: URL;
  headers: Record<string, string>;
}

/** What every request to one endpoint shares, worked out once per stored config. */
interface Target {
  url: URL;
  /** The subscription's extra static headers, names in lower case (none of them one that Herald sets, but `user-agent`). */
  extraHeaders: [string, string][];
  key: KeyObject;
  /** Just `key`, for the usual endpoint, whose secret was never rotated. */
  keys: readonly KeyObject[];
  /** Rotated secrets, each signing until its grace period ends (ms since the epoch). */
  previous: { key: KeyObject; until: number }[];
}

const targets = new WeakMap<StoredWebhookConfig, Target>();

function targetOf(config: StoredWebhookConfig): Target {
  let target = targets.get(config);
  if (!target) {
    const key = createSecretKey(secretKey(config.secret));
    target = {
      url: new URL(config.url),
      // In lower case, as Herald's own: a `User-Agent` replaces Herald's rather than going out beside it.
      extraHeaders: Object.entries(config.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
      key,
      keys: [key],
      previous: (config.previousSecrets ?? []).map((old) => ({ key: createSecretKey(secretKey(old.secret)), until: Date.parse(old.expiresAt) })),
    };
    targets.set(config, target);
  }
  return target;
}

/**
 * The request that carries `body`, the JSON of the message `id`, to the config's endpoint at `now`:
 * its static headers and the Standard Webhooks ones, signed with the current secret and with the
 * rotated ones still in their grace period.
 */
export function webhookRequest(config: StoredWebhookConfig, id: string, body: string, now: number): WebhookRequest {
  const target = targetOf(config);
  const keys = target.previous.length === 0 ? target.keys : [target.key, ...target.previous.filter((old) => old.until > now).map((old) => old.key)];
  const signed = signedHeaders(keys, id, Math.floor(now / 1000), body);
  // A literal, not a spread: objects of one shape keep undici's header handling on its fast path (several µs a request).
  const headers: Record<string, string> = {
    'user-agent': userAgent,
    'content-type': 'application/json',
    'webhook-id': signed['webhook-id'],
    'webhook-timestamp': signed['webhook-timestamp'],
    'webhook-signature': signed['webhook-signature'],
  };
  for (const [name, value] of target.extraHeaders) headers[name] = value;
  return { url: target.url, headers };
}
