import { ValidationError } from '@herald/core';
import { destinationUrl, pushConfigFields, refusedScheme, refusedUrlTarget } from '@herald/outbox';
import { z } from 'zod';

/** An AMQP 0-9-1 short string (at most 255 bytes of UTF-8), without control characters: exchange names and routing keys. */
const shortString = z
  .string()
  .regex(/^[^\p{Cc}\p{Cs}]*$/u, 'must hold no control characters (U+0000 to U+001F, U+007F to U+009F) and no unpaired surrogates')
  .refine((text) => Buffer.byteLength(text) <= 255, 'must be at most 255 bytes in UTF-8');

/** The query parameters amqplib reads from a broker URL, each with what its value must be. */
const queryParameters: Record<string, (value: string) => boolean> = {
  /** Seconds between heartbeats; 0 turns them off. */
  heartbeat: (value) => unsignedAtMost(value, 0xffff),
  channelMax: (value) => unsignedAtMost(value, 0xffff),
  /** 0 (the broker's limit) or at least the protocol's minimum frame, 4096 bytes. */
  frameMax: (value) => unsignedAtMost(value, 0xffffffff) && (Number(value) === 0 || Number(value) >= 4096),
  locale: (value) => /^[A-Za-z]{2,8}(?:[_-][A-Za-z0-9]{1,8})*$/.test(value),
};

const queryRule =
  'must have no #fragment, and no query parameters but those amqplib reads, each once: heartbeat and channelMax (0 to 65535), frameMax (0, or 4096 to 4294967295), locale (e.g. en_US)';

function unsignedAtMost(value: string, max: number): boolean {
  return /^\d{1,10}$/.test(value) && Number(value) <= max;
}

/** Whether the URL has only query parameters amqplib reads, each once with a valid value, and no fragment. The values are not echoed: they could be secrets. */
function knownQuery(text: string): boolean {
  // destinationUrl refuses a URL that does not parse.
  if (!URL.canParse(text)) return true;
  if (text.includes('#')) return false;
  const query = new URL(text).searchParams;
  const keys = [...query.keys()];
  return new Set(keys).size === keys.length && keys.every((key) => Object.hasOwn(queryParameters, key) && queryParameters[key]?.(query.get(key) ?? '') === true);
}

/** An AMQP subscription's `config`, as validated on create and change. */
export const amqpConfigSchema = z.strictObject({
  url: destinationUrl(['amqp:', 'amqps:'], 'must be an absolute amqp:// or amqps:// URL')
    .refine(knownQuery, queryRule)
    .describe('The broker: `amqps://user:password@host:port/vhost` (`amqp://` only when private targets are allowed). The password is never shown again'),
  exchange: shortString.describe('The exchange each event is published to; it must exist (Herald does not declare it). `""` is the default exchange'),
  routingKey: shortString.optional().describe('The routing key of every message; by default the event’s type'),
  mandatory: z
    .boolean()
    .optional()
    .describe('Publish `mandatory`: the broker returns a message that no queue takes, and the attempt fails (and is retried) instead of the message being confirmed and dropped. Default: false'),
  /** `rateLimit` (messages per second, across all nodes) and `ordered` (one at a time, in `seq` order). */
  ...pushConfigFields,
});

export type AmqpConfig = z.infer<typeof amqpConfigSchema>;

/**
 * Checks what the schema cannot: unless private targets are allowed, the broker is reached over TLS
 * (`amqps:`) at an address the address guard accepts. Host names are checked again when they resolve.
 */
export function checkAmqpConfig(config: AmqpConfig, allowPrivate: boolean): AmqpConfig {
  if (allowPrivate) return config;
  const url = new URL(config.url);
  const refused = refusedScheme(url, 'amqps') ?? refusedUrlTarget(url);
  if (refused) throw new ValidationError('The AMQP URL is not allowed', [{ path: ['config', 'url'], message: refused.message }], undefined, refused);
  return config;
}

/**
 * The URL without its password and fragment, and with `***` for the value of any query parameter amqplib does
 * not read (a config stored before they were refused): what the API, the logs and the errors show.
 */
export function redactedUrl(text: string): string {
  const url = new URL(text);
  const unknown = [...url.searchParams.keys()].filter((key) => !Object.hasOwn(queryParameters, key));
  if (url.password === '' && !text.includes('#') && unknown.length === 0) return text;
  url.password = '';
  url.hash = '';
  for (const key of unknown) url.searchParams.set(key, '***');
  return url.href;
}

/** The URL's port, the scheme's default when it names none. */
const portOf = (url: URL) => url.port || (url.protocol === 'amqps:' ? '5671' : '5672');

/**
 * The config with the password `previous` stores put back into a URL sent without one (as the API shows it, sent back
 * by a `PATCH`), when the URL names the same user at the same scheme, host, port and vhost as the stored URL. Any other
 * URL without a password is kept as given.
 */
export function restoreAmqpPassword(config: AmqpConfig, previous: AmqpConfig | undefined): AmqpConfig {
  if (!previous || !URL.canParse(previous.url) || !URL.canParse(config.url)) return config;
  const url = new URL(config.url);
  const stored = new URL(previous.url);
  const same =
    url.password === '' &&
    url.username !== '' &&
    stored.password !== '' &&
    url.username === stored.username &&
    url.protocol === stored.protocol &&
    url.hostname.toLowerCase() === stored.hostname.toLowerCase() &&
    portOf(url) === portOf(stored) &&
    url.pathname === stored.pathname;
  if (!same) return config;
  url.password = stored.password;
  return { ...config, url: url.href };
}

/** The config as the API shows it: the URL without its password. */
export function publicAmqpConfig(config: AmqpConfig): Record<string, unknown> {
  return { ...config, url: redactedUrl(config.url) };
}
