import { ValidationError } from '@herald/core';
import { destinationUrl, pushConfigFields, refusedUrlTarget } from '@herald/outbox';
import { z } from 'zod';

/** An AMQP 0-9-1 short string: exchange names and routing keys. */
const shortString = z.string().max(255);

/** An AMQP subscription's `config`, as validated on create and change. */
export const amqpConfigSchema = z.strictObject({
  /** The broker: `amqps://user:password@host:port/vhost` (`amqp://` only when private targets are allowed). The password is never shown again. */
  url: destinationUrl(['amqp:', 'amqps:'], 'must be an absolute amqp:// or amqps:// URL'),
  /** The exchange each event is published to; it must exist (Herald does not declare it). `''` is the default exchange. */
  exchange: shortString,
  /** The routing key of every message. @default the event's type */
  routingKey: shortString.optional(),
  /**
   * Publish `mandatory`: the broker returns a message that no queue takes, and the attempt fails (and is
   * retried) instead of the message being confirmed and dropped. @default false
   */
  mandatory: z.boolean().optional(),
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
  const refuse = (message: string) => new ValidationError('The AMQP URL is not allowed', [{ path: ['config', 'url'], message }]);
  if (url.protocol !== 'amqps:') throw refuse('must be amqps (amqp only when HERALD_ALLOW_PRIVATE=1)');
  const refused = refusedUrlTarget(url);
  if (refused) throw refuse(refused.message);
  return config;
}

/** The URL without its password: what the API, the logs and the errors show. */
export function redactedUrl(text: string): string {
  const url = new URL(text);
  if (url.password === '') return text;
  url.password = '';
  return url.href;
}

/** The config as the API shows it: the URL without its password. */
export function publicAmqpConfig(config: AmqpConfig): Record<string, unknown> {
  return { ...config, url: redactedUrl(config.url) };
}
