import type { DeliveredEvent } from './delivered-event.js';
/**
 * Verifies webhooks on the receiver's side, after Standard Webhooks. Uses only Web Crypto, so it runs
 * in Node.js 20+, Deno, Bun, edge runtimes and browsers.
 */

/** An event as a webhook delivers it. */
export type WebhookEvent<TData = unknown> = DeliveredEvent<string, TData>;

/** Request headers: a fetch `Headers`, anything with `get`, or a Node.js-style object. */
export type WebhookHeaders =
  | { get(name: string): string | null | undefined }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** The exact bytes that were signed. A body parsed and serialised again is not them. */
export type WebhookBody = string | Uint8Array | ArrayBuffer;

export interface VerifyWebhookOptions {
  /** How far `webhook-timestamp` may be from now, in seconds, either way. @default 300 */
  tolerance?: number;
  /** The time to check the timestamp against. @default Date.now() */
  now?: number | Date;
}

export type WebhookVerificationErrorCode =
  | 'missing-header'
  | 'invalid-header'
  | 'timestamp-too-old'
  | 'timestamp-too-new'
  | 'invalid-signature'
  | 'invalid-secret'
  | 'invalid-payload';

/** The base of every error `verifyWebhook` throws; `code` says which check failed. */
export class WebhookVerificationError extends Error {
  override readonly name: string = 'WebhookVerificationError';
  constructor(
    readonly code: WebhookVerificationErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A `webhook-id`, `webhook-timestamp` or `webhook-signature` header is missing or malformed. */
export class WebhookHeaderError extends WebhookVerificationError {
  override readonly name = 'WebhookHeaderError';
}

/** `webhook-timestamp` is further from now than the tolerance: a replay, or a clock that is off. */
export class WebhookTimestampError extends WebhookVerificationError {
  override readonly name = 'WebhookTimestampError';
  constructor(
    /** The header's time, in unix seconds. */
    readonly timestamp: number,
    /** The receiver's time, in unix seconds. */
    readonly now: number,
  ) {
    super(
      timestamp < now ? 'timestamp-too-old' : 'timestamp-too-new',
      `The webhook timestamp is ${Math.abs(now - timestamp)} s ${timestamp < now ? 'old' : 'in the future'}`,
    );
  }
}

/** No signature matches: the body was changed (or re-serialised), or the secret is not the sender's. */
export class WebhookSignatureError extends WebhookVerificationError {
  override readonly name = 'WebhookSignatureError';
  constructor() {
    super('invalid-signature', 'No webhook signature matches the body and the secret (verify the raw body, before any JSON parsing)');
  }
}

/** The signature matched, but the body is not JSON. */
export class WebhookPayloadError extends WebhookVerificationError {
  override readonly name = 'WebhookPayloadError';
}

const encoder = new TextEncoder();
/** Spelled this way so that it type-checks with the DOM library and with Node's types alone. */
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;
const keys = new Map<string, Promise<HmacKey>>();

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null | undefined }).get(name) ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  let value = record[name];
  if (value === undefined) {
    const key = Object.keys(record).find((candidate) => candidate.toLowerCase() === name);
    value = key === undefined ? undefined : record[key];
  }
  return typeof value === 'string' ? value : value?.[0];
}

function fromBase64(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) return undefined;
  try {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return undefined;
  }
}

function key(secret: string): Promise<HmacKey> {
  let found = keys.get(secret);
  if (!found) {
    const bytes = fromBase64(secret.startsWith('whsec_') ? secret.slice(6) : secret);
    if (!bytes || bytes.length === 0) throw new WebhookVerificationError('invalid-secret', 'The secret must be "whsec_" followed by base64');
    found = crypto.subtle.importKey('raw', bytes as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
    if (keys.size >= 100) keys.delete(keys.keys().next().value as string);
    keys.set(secret, found);
  }
  return found;
}

function bytesOf(body: WebhookBody): Uint8Array {
  if (typeof body === 'string') return encoder.encode(body);
  return body instanceof Uint8Array ? body : new Uint8Array(body);
}

/**
 * Checks a webhook's `webhook-signature` against the raw body and one or more secrets (several while
 * a rotation is under way), and its `webhook-timestamp` against the clock; returns the parsed body.
 * Throws a {@link WebhookVerificationError}: {@link WebhookHeaderError}, {@link WebhookTimestampError},
 * {@link WebhookSignatureError} or {@link WebhookPayloadError}.
 *
 * Dedupe what it returns by `id` (the `webhook-id` header): delivery is at least once.
 */
export async function verifyWebhook<T = WebhookEvent>(
  secret: string | readonly string[],
  rawBody: WebhookBody,
  headers: WebhookHeaders,
  options: VerifyWebhookOptions = {},
): Promise<T> {
  const id = header(headers, 'webhook-id');
  const timestampText = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  for (const [name, value] of [
    ['webhook-id', id],
    ['webhook-timestamp', timestampText],
    ['webhook-signature', signatures],
  ] as const) {
    if (!value) throw new WebhookHeaderError('missing-header', `The ${name} header is missing`);
  }
  if (!/^\d{1,12}$/.test(timestampText as string)) throw new WebhookHeaderError('invalid-header', 'The webhook-timestamp header must be unix seconds');
  const timestamp = Number(timestampText);
  const now = Math.floor((options.now === undefined ? Date.now() : Number(options.now)) / 1000);
  if (Math.abs(now - timestamp) > (options.tolerance ?? 300)) throw new WebhookTimestampError(timestamp, now);

  const body = bytesOf(rawBody);
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix);
  signed.set(body, prefix.length);
  const candidates = (signatures as string)
    .split(' ')
    .filter((entry) => entry.startsWith('v1,'))
    .map((entry) => fromBase64(entry.slice(3)))
    .filter((bytes): bytes is Uint8Array => bytes !== undefined && bytes.length === 32);
  let matched = false;
  for (const each of typeof secret === 'string' ? [secret] : secret) {
    const hmac = await key(each);
    for (const candidate of candidates) {
      if (await crypto.subtle.verify('HMAC', hmac, candidate as Uint8Array<ArrayBuffer>, signed)) matched = true;
    }
  }
  if (!matched) throw new WebhookSignatureError();
  try {
    return JSON.parse(new TextDecoder().decode(body)) as T;
  } catch {
    throw new WebhookPayloadError('invalid-payload', 'The webhook body is not JSON');
  }
}

/** The `type` of the request Herald sends to verify an endpoint. */
export const endpointVerificationType = 'herald.endpoint.verification';

/**
 * The challenge of an endpoint verification request, or undefined for any other payload. Answer it
 * with 2xx and `{"challenge": "<it>"}` (the webhook middleware does this for you).
 */
export function verificationChallenge(payload: unknown): string | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const { type, data } = payload as { type?: unknown; data?: { challenge?: unknown } };
  return type === endpointVerificationType && typeof data?.challenge === 'string' ? data.challenge : undefined;
}
