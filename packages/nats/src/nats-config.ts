import { ValidationError } from '@herald/core';
import { pushConfigFields, refusedHost } from '@herald/outbox';
import { z } from 'zod';

/** The subject of a subscription that names none; `{type}` stands for the event's type. */
export const defaultNatsSubject = 'herald.{type}';

/** One server, as `host:port` or `nats://host:port` (`tls://` for TLS). */
const server = z
  .string()
  .max(512)
  .refine((text) => serverUrl(text) !== undefined, 'must be host:port or a nats://, tls:// URL');

/** A NATS subscription's `config`, as validated on create and change. */
export const natsConfigSchema = z.strictObject({
  /** The NATS servers to connect to (one cluster); credentials in them (`nats://user:pass@host`) are never shown again. */
  servers: z.union([server, z.array(server).min(1).max(10)]),
  /**
   * The subject each event is published to; `{type}` is replaced by the event's type. A JetStream
   * stream must capture it. @default 'herald.{type}'
   */
  subject: z
    .string()
    .max(255)
    .regex(/^[^\s*>.]+(\.[^\s*>.]+)*$/, 'must be dot-separated tokens without spaces or wildcards')
    .optional(),
  /** `rateLimit` (publishes per second, across all nodes) and `ordered` (one at a time, in `seq` order). */
  ...pushConfigFields,
});

export type NatsConfig = z.infer<typeof natsConfigSchema>;

/** A server as a URL, or undefined when it is not one. */
export function serverUrl(text: string): URL | undefined {
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `nats://${text}`);
    return ['nats:', 'tls:'].includes(url.protocol) && url.hostname !== '' && (url.pathname === '' || url.pathname === '/') ? url : undefined;
  } catch {
    return undefined;
  }
}

/** The config's servers as a list. */
export function serverList(config: Pick<NatsConfig, 'servers'>): string[] {
  return typeof config.servers === 'string' ? [config.servers] : config.servers;
}

/** The subject an event of `type` goes to. */
export function natsSubject(config: Pick<NatsConfig, 'subject'>, type: string): string {
  return (config.subject ?? defaultNatsSubject).replaceAll('{type}', type);
}

/** Unless private targets are allowed, every server's host passes the address guard (names again when they resolve). */
export function checkNatsConfig(config: NatsConfig, allowPrivate: boolean): NatsConfig {
  if (allowPrivate) return config;
  for (const [index, text] of serverList(config).entries()) {
    const refused = refusedHost((serverUrl(text) as URL).hostname);
    const path = typeof config.servers === 'string' ? ['config', 'servers'] : ['config', 'servers', index];
    if (refused) throw new ValidationError('The NATS server is not allowed', [{ path, message: refused.message }]);
  }
  return config;
}

/** A server without its credentials: what the API, the logs and the errors show. */
export function redactedServer(text: string): string {
  const url = serverUrl(text);
  if (!url || (url.username === '' && url.password === '')) return text;
  url.username = '***';
  url.password = '';
  return url.href.replace(/\/$/, '');
}

/** The config as the API shows it: the servers without their credentials. */
export function publicNatsConfig(config: NatsConfig): Record<string, unknown> {
  const servers = typeof config.servers === 'string' ? redactedServer(config.servers) : config.servers.map(redactedServer);
  return { ...config, servers };
}
