import { isIP } from 'node:net';
import { type Logger, shownUrl, type TlsSettings } from '@herald/core';
import { Redis } from 'ioredis';

/** Where Redis is and how to reach it: what the broker and the rate-limit store take alike. */
export interface RedisOptions {
  /** Where Redis is: `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /**
   * What TLS trusts and presents (see {@link TlsSettings}), for every connection of a `rediss://` URL. Refused with a
   * `redis://` URL, which is not TLS.
   * @default Node.js's trusted authorities, no client certificate
   */
  tls?: TlsSettings;
  /**
   * Put before every channel name and key, so several Herald deployments can share one Redis, and before the name of
   * each connection in Redis's `CLIENT LIST` (`<prefix>herald-publisher`, `-subscriber`, `-rate-limits`). @default ''
   */
  prefix?: string;
  /** How long `init()` waits for Redis before it fails, in ms. @default 10000 */
  connectTimeout?: number;
  /** The longest wait between two reconnection attempts, in ms. @default 2000 */
  maxReconnectDelay?: number;
  /**
   * How often each connection sends a `PING` while it is up, in ms, so that Redis's `timeout` for idle clients (or a
   * proxy's idle timeout) never closes it. More often when Redis's `CONFIG GET timeout` answers: at least twice per
   * `timeout`. `0` sends none.
   * @default 60000
   */
  pingInterval?: number;
  /** @default silent */
  logger?: Logger;
}

/** `options` with their defaults; throws, naming `owner`, unless the URL is Redis's, and for `tls` without TLS. */
export function redisDefaults(options: RedisOptions, owner: string): Required<Omit<RedisOptions, 'logger' | 'tls'>> & Pick<RedisOptions, 'logger' | 'tls'> {
  const url = options.url ?? 'redis://127.0.0.1:6379';
  if (!/^rediss?:\/\//.test(url)) throw new Error(`${owner}: \`url\` must start with redis:// or rediss://`);
  // Not ignored: the connection would be in the clear, the certificates unused, and no one told.
  if (options.tls && !url.startsWith('rediss://')) throw new Error(`${owner}: \`tls\` needs a rediss:// URL; \`url\` is redis://, without TLS`);
  const pingInterval = options.pingInterval ?? 60_000;
  // Node.js would run a longer interval every millisecond.
  if (!(pingInterval >= 0 && pingInterval <= 2 ** 31 - 1)) throw new Error(`${owner}: \`pingInterval\` must be from 0 to 2147483647 ms`);
  return {
    url,
    prefix: options.prefix ?? '',
    connectTimeout: options.connectTimeout ?? 10_000,
    maxReconnectDelay: options.maxReconnectDelay ?? 2_000,
    pingInterval,
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  };
}

/** How a connection to Redis is made and kept. */
export interface RedisConnectionOptions {
  url: string;
  /** Merged with the URL's host as the server name, over `rediss://`. */
  tls?: RedisOptions['tls'];
  /** Which connection it is, in its log lines and its name in Redis's `CLIENT LIST`: `<prefix>herald-<role>`. */
  role: string;
  /** The deployment's prefix, before its name in `CLIENT LIST`, so that an operator tells deployments apart. */
  prefix: string;
  connectTimeout: number;
  /** A command that takes longer fails. */
  commandTimeout: number;
  maxReconnectDelay: number;
  /** How often it sends a `PING` while it is up, in ms, or more often for Redis's `timeout`; `0` for never. */
  pingInterval: number;
  /** Whether its owner closed: it stops reconnecting then. */
  closed: () => boolean;
  logger?: Logger;
}

/**
 * A connection that never queues commands while disconnected (they fail at once, and the caller decides)
 * and, once it has connected, reconnects with a capped backoff. It logs once when it is lost, whether by an error
 * or closed by Redis (`CLIENT KILL`, a restart), however long Redis stays away, and once when it is back; not when
 * its owner closes it. It sends a `PING` every `pingInterval` ms while it is up, so that Redis does not close it as idle.
 */
export function redisConnection({
  url,
  tls,
  role,
  prefix,
  connectTimeout,
  commandTimeout,
  maxReconnectDelay,
  pingInterval,
  closed,
  logger,
}: RedisConnectionOptions): Redis {
  const { protocol, hostname } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  // ioredis names no server in the TLS handshake: a TLS front that routes by name (SNI) needs it. An address is no name.
  const servername = isIP(host) === 0 ? { servername: host } : {};
  const connection = new Redis(url, {
    ...(protocol === 'rediss:' ? { tls: { ...tls, ...servername } } : {}),
    lazyConnect: true,
    // Redis refuses a name with a space or a character outside ASCII, and the connection would go unnamed.
    connectionName: `${prefix}herald-${role}`.replace(/[^!-~]/g, '_'),
    connectTimeout,
    enableOfflineQueue: false,
    autoResubscribe: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout,
    retryStrategy: (attempt) => (closed() ? null : Math.min(50 * 2 ** Math.min(attempt, 10), maxReconnectDelay)),
  });
  // Before it is first ready, a failure fails the start (`connectAll` says why), and no reconnection follows.
  let state: 'starting' | 'up' | 'down' = 'starting';
  // Every loss ends in 'close'; an error, when there is one, comes just before it. Redis closing it cleanly has none.
  let lastError: Error | undefined;
  connection.on('error', (error: Error) => {
    lastError = error;
  });
  connection.on('close', () => {
    if (state === 'up') {
      if (!closed()) logger?.warn({ ...(lastError ? { err: lastError } : {}), role }, 'the connection to Redis failed; reconnecting');
      state = 'down';
    }
    lastError = undefined;
  });
  connection.on('ready', () => {
    if (state === 'down') logger?.info({ role }, 'reconnected to Redis');
    state = 'up';
  });
  if (pingInterval > 0) keepBusy(connection, pingInterval);
  return connection;
}

/**
 * Has `connection` send a `PING` every `pingInterval` ms while it is up, or at least twice within the `timeout` after
 * which Redis closes an idle client (pub/sub clients aside), when `CONFIG GET` says it: managed Redis often refuses it.
 * TCP keepalive would not do: Redis counts the time since a client's last command.
 */
function keepBusy(connection: Redis, pingInterval: number): void {
  let pinging: NodeJS.Timeout | undefined;
  connection.on('ready', async () => {
    // Sent before its owner's first command after 'ready': before the subscriber subscribes, after which it is refused.
    const [, timeout] = ((await connection.config('GET', 'timeout').catch(() => [])) ?? []) as string[];
    if (connection.status !== 'ready') return;
    clearInterval(pinging);
    const every = Math.min(pingInterval, Number(timeout) > 0 ? Number(timeout) * 500 : pingInterval);
    pinging = setInterval(() => void connection.ping().catch(() => {}), every).unref();
  });
  connection.on('close', () => clearInterval(pinging));
}

/**
 * Connects `connections`, or fails within `timeout` ms saying where Redis was looked for (its password hidden)
 * and why: the first error a connection reported (a refused connection, a certificate TLS refused...), with its
 * `code`, since ioredis's `connect()` itself fails with only "Connection is closed.".
 */
export async function connectAll(connections: readonly Redis[], url: string, timeout: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout);
  });
  let reported: (Error & { code?: unknown; library?: unknown; reason?: unknown }) | undefined;
  const report = (error: Error) => {
    reported ??= error;
  };
  for (const connection of connections) connection.on('error', report);
  try {
    await Promise.race([Promise.all(connections.map((connection) => connection.connect())), timedOut]);
  } catch (error) {
    for (const connection of connections) connection.disconnect();
    const code = typeof reported?.code === 'string' ? reported.code : undefined;
    // OpenSSL's message is a line of its error queue (a source path, a line break): its `reason` says it alone.
    const why = typeof reported?.library === 'string' && typeof reported.reason === 'string' ? reported.reason : (reported ?? (error as Error)).message;
    // Not the reported error as `cause`: pino, for one, would log its message again after this one's.
    // A TLS handshake with a server that does not speak TLS waits for an answer that never comes.
    const tls = url.startsWith('rediss:') && (reported === undefined || code === 'ETIMEDOUT') ? ' (the URL says rediss://: does the server take TLS there?)' : '';
    const failed = new Error(`Redis is not reachable at ${shownUrl(url)}: ${why}${code && !why.includes(code) ? ` (${code})` : ''}${tls}`);
    throw code ? Object.assign(failed, { code }) : failed;
  } finally {
    clearTimeout(timer);
    for (const connection of connections) connection.off('error', report);
  }
}
