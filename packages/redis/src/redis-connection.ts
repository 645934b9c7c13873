import { isIP } from 'node:net';
import type { Logger } from '@herald/core';
import { Redis } from 'ioredis';

/** Where Redis is and how to reach it: what the broker and the rate-limit store take alike. */
export interface RedisOptions {
  /** Where Redis is: `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /** Put before every channel name and key, so several Herald deployments can share one Redis. @default '' */
  prefix?: string;
  /** How long `init()` waits for Redis before it fails, in ms. @default 10000 */
  connectTimeout?: number;
  /** The longest wait between two reconnection attempts, in ms. @default 2000 */
  maxReconnectDelay?: number;
  /** @default silent */
  logger?: Logger;
}

/** `options` with their defaults; throws, naming `owner`, unless the URL is Redis's. */
export function redisDefaults(options: RedisOptions, owner: string): Required<Omit<RedisOptions, 'logger'>> & Pick<RedisOptions, 'logger'> {
  const url = options.url ?? 'redis://127.0.0.1:6379';
  if (!/^rediss?:\/\//.test(url)) throw new Error(`${owner}: \`url\` must start with redis:// or rediss://`);
  return {
    url,
    prefix: options.prefix ?? '',
    connectTimeout: options.connectTimeout ?? 10_000,
    maxReconnectDelay: options.maxReconnectDelay ?? 2_000,
    ...(options.logger ? { logger: options.logger } : {}),
  };
}

/** How a connection to Redis is made and kept. */
export interface RedisConnectionOptions {
  url: string;
  /** Its name in Redis's `CLIENT LIST`, after `herald-`. */
  role: string;
  connectTimeout: number;
  /** A command that takes longer fails. */
  commandTimeout: number;
  maxReconnectDelay: number;
  /** Whether its owner closed: it stops reconnecting then. */
  closed: () => boolean;
  logger?: Logger;
}

/**
 * A connection that never queues commands while disconnected (they fail at once, and the caller decides)
 * and reconnects with a capped backoff, logging once when it fails and once when it is back.
 */
export function redisConnection({ url, role, connectTimeout, commandTimeout, maxReconnectDelay, closed, logger }: RedisConnectionOptions): Redis {
  const { protocol, hostname } = new URL(url);
  // ioredis names no server in the TLS handshake: a TLS front that routes by name (SNI) needs it.
  const tls = protocol === 'rediss:' && isIP(hostname) === 0 ? { tls: { servername: hostname } } : {};
  const connection = new Redis(url, {
    ...tls,
    lazyConnect: true,
    connectionName: `herald-${role}`,
    connectTimeout,
    enableOfflineQueue: false,
    autoResubscribe: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout,
    retryStrategy: (attempt) => (closed() ? null : Math.min(50 * 2 ** Math.min(attempt, 10), maxReconnectDelay)),
  });
  let down = false;
  connection.on('error', (error: Error) => {
    if (!down) logger?.warn({ err: error, role }, 'the connection to Redis failed; reconnecting');
    down = true;
  });
  connection.on('ready', () => {
    if (down) logger?.info({ role }, 'reconnected to Redis');
    down = false;
  });
  return connection;
}

/**
 * Connects `connections`, or fails within `timeout` ms saying where Redis was looked for (its password hidden)
 * and why: the first error a connection reported (a refused connection, a certificate TLS refused...), since
 * ioredis's `connect()` itself fails with only "Connection is closed.".
 */
export async function connectAll(connections: readonly Redis[], url: string, timeout: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout);
  });
  let reported: (Error & { code?: unknown }) | undefined;
  const report = (error: Error) => {
    reported ??= error;
  };
  for (const connection of connections) connection.on('error', report);
  try {
    await Promise.race([Promise.all(connections.map((connection) => connection.connect())), timedOut]);
  } catch (error) {
    for (const connection of connections) connection.disconnect();
    const cause = reported ?? (error as Error);
    const code = reported && typeof reported.code === 'string' && !reported.message.includes(reported.code) ? ` (${reported.code})` : '';
    throw new Error(`Redis is not reachable at ${url.replace(/\/\/[^@/]*@/, '//***@')}: ${cause.message}${code}`, { cause });
  } finally {
    clearTimeout(timer);
    for (const connection of connections) connection.off('error', report);
  }
}
