import { createSecretKey, type KeyObject } from 'node:crypto';
import { livePreviousSecrets, type StoredWebhookConfig } from './webhook-config.js';
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
  /** The current secret's key, alone: all that signs for an endpoint whose secret was never rotated. */
  current: readonly [KeyObject];
}

const targets = new WeakMap<StoredWebhookConfig, Target>();

function targetOf(config: StoredWebhookConfig): Target {
  let target = targets.get(config);
  if (!target) {
    target = {
      url: new URL(config.url),
      // In lower case, as Herald's own: a `User-Agent` replaces Herald's rather than going out beside it.
      extraHeaders: Object.entries(config.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
      current: [createSecretKey(secretKey(config.secret))],
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
  return { url: target.url, headers };
}
