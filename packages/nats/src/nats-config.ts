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

const serversWanted = 'must be a server (host:port, or a nats:// or tls:// URL) or a list of 1 to 10 servers of one cluster';

/** A NATS subscription's `config`, as validated on create and change. */
export const natsConfigSchema = z.strictObject({
  servers: z
    .union([server, z.array(server).min(1, serversWanted).max(10, serversWanted)], { error: serversWanted })
    .describe(
      'The NATS servers to connect to (one cluster): `host:port`, `nats://` or `tls://` URLs, each reached over TLS whatever the scheme (without it only when private targets are allowed); credentials in them (`nats://user:pass@host`) are never shown again',
    ),
  subject: z
    .string()
    .max(255)
    .regex(/^[^\s*>.]+(\.[^\s*>.]+)*$/, 'must be dot-separated tokens without spaces or wildcards')
    .refine(
      (subject) => !subject.startsWith('$') && !subject.startsWith('_INBOX.'),
      'must not be a system subject: those starting with $ ($JS., $SYS., $KV., ...) are the NATS and JetStream APIs, and _INBOX. is where replies go',
    )
    .optional()
    .describe(`The subject each event is published to; \`{type}\` is replaced by the event’s type. A JetStream stream must capture it. Default: \`${defaultNatsSubject}\``),
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
    if (refused) throw new ValidationError('The NATS server is not allowed', [{ path, message: refused.message }], undefined, refused);
  }
  return config;
}

/** What the API shows in place of a credential. */
const masked = '***';

/**
 * A server without its credentials: what the API, the logs and the errors show. A password is masked
 * (`nats://user:***@host`), and a token, given in the user's place, too (`nats://***@host`).
 */
export function redactedServer(text: string): string {
  const url = serverUrl(text);
  if (!url || (url.username === '' && url.password === '')) return text;
  if (url.password === '') url.username = masked;
  else url.password = masked;
  return url.href.replace(/\/$/, '');
}

/** The URL's port, 4222 when it names none. */
const portOf = (url: URL) => url.port || '4222';

/**
 * The config with each masked credential of its servers (as the API shows them, sent back by a `PATCH`) replaced by
 * the one `previous` stores for the same server: the same scheme, host and port, and user for a password. A masked
 * credential that no stored server has is refused with a 422.
 */
export function restoreNatsCredentials(config: NatsConfig, previous: NatsConfig | undefined): NatsConfig {
  const stored = previous ? serverList(previous).map((text) => serverUrl(text) as URL) : [];
  const restored = serverList(config).map((text, index) => {
    const url = serverUrl(text) as URL;
    const token = url.username === masked && url.password === '';
    if (!token && url.password !== masked) return text;
    const same = stored.find(
      (candidate) =>
        candidate.protocol === url.protocol &&
        candidate.hostname === url.hostname &&
        portOf(candidate) === portOf(url) &&
        (token ? candidate.username !== '' && candidate.password === '' : candidate.username === url.username && candidate.password !== ''),
    );
    if (!same) {
      const path = typeof config.servers === 'string' ? ['config', 'servers'] : ['config', 'servers', index];
      const what = token ? 'token' : `password of ${url.username}`;
      throw new ValidationError('The NATS server has a masked credential', [
        { path, message: `*** stands for the ${what} stored for this server, and none is stored for ${text}: give the ${token ? 'token' : 'password'} itself` },
      ]);
    }
    url.username = same.username;
    url.password = same.password;
    return url.href.replace(/\/$/, '');
  });
  return { ...config, servers: typeof config.servers === 'string' ? (restored[0] as string) : restored };
}

/** The config as the API shows it: the servers without their credentials. */
export function publicNatsConfig(config: NatsConfig): Record<string, unknown> {
  const servers = typeof config.servers === 'string' ? redactedServer(config.servers) : config.servers.map(redactedServer);
  return { ...config, servers };
}
