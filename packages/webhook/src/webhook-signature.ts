import { createHmac, createSecretKey, type KeyObject, randomBytes } from 'node:crypto';

/** The prefix of Standard Webhooks secrets. */
export const secretPrefix = 'whsec_';

/** `whsec_` + base64 of 24 to 64 bytes. */
export const secretPattern = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

/** The key bytes of a `whsec_` secret (or of a bare base64 one, as Standard Webhooks libraries accept). */
export function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith(secretPrefix) ? secret.slice(secretPrefix.length) : secret, 'base64');
}

/** A new secret: `whsec_` + base64 of `bytes` random bytes. @default bytes 32 */
export function generateSecret(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 24 || bytes > 64) throw new RangeError('A webhook secret has 24 to 64 bytes');
  return `${secretPrefix}${randomBytes(bytes).toString('base64')}`;
}

/** Decoded keys of the secrets in use, most recently used last. */
const keys = new Map<string, KeyObject>();

function cachedKey(secret: string): KeyObject {
  let key = keys.get(secret);
  if (key) keys.delete(secret);
  else {
    key = createSecretKey(secretKey(secret));
    if (keys.size >= 1000) keys.delete(keys.keys().next().value as string);
  }
  keys.set(secret, key);
  return key;
}

/** `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the secret's key. */
export function signature(secret: string | Buffer | KeyObject, id: string, timestamp: number, body: string): string {
  const key = typeof secret === 'string' ? cachedKey(secret) : secret;
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** The three Standard Webhooks headers; one signature per secret, space-separated. */
export function signedHeaders(
  secrets: readonly (string | Buffer | KeyObject)[],
  id: string,
  timestamp: number,
  body: string,
): { 'webhook-id': string; 'webhook-timestamp': string; 'webhook-signature': string } {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': secrets.map((secret) => signature(secret, id, timestamp, body)).join(' '),
  };
}
