import {
  type Broker,
  checkLogPartitionSize,
  type EventTypeDefinition,
  type Logger,
  type RateLimitStore,
  retentionDuration,
  type Store,
  shownUrl,
  type TlsSettings,
  type Transport,
} from '@herald/core';
import proxyaddr from 'proxy-addr';
import type { RateLimits } from './rate-limiter.js';

/** A quota: at most `requests` in each `window` of seconds. */
export interface RateLimit {
  requests: number;
  /** Seconds. */
  window: number;
}

/**
 * A Redis that createHerald makes the broker or the rate-limit store of, with `@herald/redis` (an optional peer
 * dependency: install it beside the server) as `redisBroker({ url, tls })` and `redisRateLimits({ url, tls })` would.
 */
export interface RedisEndpoint {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url: string;
  /**
   * What TLS trusts and presents: `ca`, `cert` and `key`, as `tls.connect` takes them. Needs a `rediss://` URL.
   * @default Node.js's trusted authorities, no client certificate
   */
  tls?: TlsSettings;
}

/** Everything `createHerald` takes. Each option named after an environment variable falls back to it. */
export interface HeraldOptions<TEventTypes extends readonly EventTypeDefinition[] = readonly EventTypeDefinition[]> {
  /** Where the environment variables are read from. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** A store to use instead of `database`. */
  store?: Store;
  /**
   * `HERALD_DATABASE`: a SQLite file path, `:memory:`, or a `postgres://` URL.
   * @default './data/herald.db'
   */
  database?: string;
  /**
   * What rings the nodes: a broker, such as `redisBroker({ url, prefix })` of `@herald/redis`, or `{ url, tls }` of
   * a Redis, which Herald makes the broker of with `@herald/redis`, logging as `component: 'broker'`.
   * `HERALD_BROKER` is read when this is absent: `memory`, or a `redis://` or `rediss://` URL.
   * @default memoryBroker()
   */
  broker?: Broker | RedisEndpoint;
  /**
   * A store the nodes share to count the REST rate limits in (`rateLimit`, `adminRateLimit`,
   * `authFailureLimit`), so that a limit holds across the cluster: a store, such as `redisRateLimits()` of
   * `@herald/redis`, or `{ url, tls }` of a Redis, which Herald makes the store of with `@herald/redis`, logging as
   * `component: 'rate-limits'`. `HERALD_RATE_LIMIT_STORE` is read when this is absent: `memory`, or a `redis://`
   * or `rediss://` URL.
   * @default each node counts in its own memory
   */
  rateLimitStore?: RateLimitStore | RedisEndpoint;
  /** The transports to mount, e.g. `[webhook(), websocket(), sse()]`. @default [] */
  transports?: readonly Transport[];
  /** Event types defined in code with `defineEventType`. @default [] */
  eventTypes?: TEventTypes;
  /**
   * `HERALD_ADMIN_KEY`: an admin key, any value of at least 32 visible ASCII characters without spaces (one
   * in the shape the server issues, `hk_…`, too); it replaces the one configured before. When absent and no
   * admin key is stored, one is generated and logged once, at warn level.
   */
  adminKey?: string;
  /** `PORT`: what `listen()` binds when given no port. @default 3000 */
  port?: number;
  /** The address `listen()` binds. @default '::' (every interface) */
  host?: string;
  /** `HERALD_LOG_LEVEL`: pino's level. @default 'info' */
  logLevel?: string;
  /** A pino-compatible logger to use instead of a new one. */
  logger?: Logger;
  /** Largest accepted request body, in bytes. @default 262144 (256 KiB) */
  bodyLimit?: number;
  /** The envelope's `source`. @default '/herald' */
  source?: string;
  /** How long `close()` waits for in-flight requests before cutting connections, in ms. @default 10000 */
  shutdownTimeout?: number;
  /**
   * `HERALD_MAX_CONNECTIONS_PER_KEY`: open WebSocket, SSE and other long-lived connections per API key
   * or stream token, every transport together. @default 1000
   */
  maxConnectionsPerKey?: number;
  /**
   * `HERALD_MAX_CONNECTIONS`: open WebSocket, SSE and other long-lived connections this server holds in all,
   * every key and transport together; past it, a new one is refused with 503 `node-at-capacity` and
   * `Retry-After`. Keep it under the process's open-files limit, so that clients are told rather than left
   * hanging or dropped.
   * @default what the open-files limit leaves room for: 9/10 of it, and at least 100 files fewer (on Linux, where
   * Herald can read it; no limit elsewhere)
   */
  maxConnections?: number;
  /**
   * `HERALD_MAX_SUBSCRIPTIONS`: durable subscriptions one consumer may hold, every transport and status
   * together; past it, creating one answers 409. Also the default page of `GET /v1/subscriptions`, so that
   * one consumer's list comes whole. @default 100
   */
  maxSubscriptions?: number;
  /**
   * `HERALD_RATE_LIMIT` (e.g. `600/1m`, or `off`): REST requests each consumer key and each stream token may
   * make per window, on each node; past it they answer 429 with `Retry-After`. `false` turns it off.
   * @default { requests: 600, window: 60 }
   */
  rateLimit?: RateLimit | false;
  /**
   * `HERALD_ADMIN_RATE_LIMIT`: the same for each admin key. Off by default: an admin key is the provider's
   * own backend, which publishes with it. @default false
   */
  adminRateLimit?: RateLimit | false;
  /**
   * `HERALD_AUTH_FAILURE_LIMIT`: failed authentications one client address (an IPv6 /64) may make per
   * window, on each node; past it, its REST requests answer 429 without being authenticated. `false` turns it off.
   * @default { requests: 60, window: 60 }
   */
  authFailureLimit?: RateLimit | false;
  /**
   * `HERALD_LOG_RETENTION`: how long events stay in the log (`90s`, `15m`, `12h`, `30d`), unless their type
   * has a retention of its own. Pruning never removes an event a pending push delivery still needs.
   * @default '30d'
   */
  logRetention?: string;
  /** `HERALD_LOG_MAX_EVENTS`: at most this many of the newest events stay in the log, whatever their type. @default no limit */
  logMaxEvents?: number;
  /**
   * `HERALD_LOG_PARTITION_SIZE`: seqs per partition of the log on PostgreSQL (from 1,000 to 100,000,000), which
   * pruning drops whole; see docs/guides/retention.md. For a store made by `HERALD_DATABASE` only. @default 100000
   */
  logPartitionSize?: number;
  /**
   * `HERALD_PORTAL_URL`: where consumers open the portal, e.g. `https://api.example.com/portal` behind a proxy, or a
   * page of your dashboard that embeds `<herald-portal>`. A portal session's `url` is it with `#token=hp_…`.
   * @default `/portal` on the host and under the path the `POST /v1/portal-sessions` request came by
   */
  portalUrl?: string;
  /**
   * `HERALD_TRUST_PROXY`: the reverse proxies in front of Herald, whose `X-Forwarded-For`, `X-Forwarded-Proto`
   * and `X-Forwarded-Host` it believes: how many there are (`1`: the one next to Herald), or their addresses and
   * subnets, comma-separated in the variable (`loopback`, `10.0.0.0/8`, `fd00::/8`; `loopback`, `linklocal` and
   * `uniquelocal` name those ranges). Behind a proxy without it, every client shares the proxy's address in the
   * per-address limits, and a portal link behind a TLS proxy is `http:`. Sets express's `trust proxy`.
   * @default none: a request's client is the address it came from
   */
  trustProxy?: number | string | readonly string[];
}

/**
 * A broker or a rate-limit store as createHerald has it: made already, to be made in memory, or to be made of a Redis
 * (`name`: the option or the variable that gave it, for messages).
 */
export type SeamSource<T> = { made: T } | 'memory' | (RedisEndpoint & { name: string });

export interface ResolvedOptions {
  database: string;
  broker: SeamSource<Broker>;
  rateLimitStore: SeamSource<RateLimitStore>;
  adminKey?: string;
  port: number;
  logLevel: string;
  bodyLimit: number;
  maxConnectionsPerKey: number;
  /** With the name it was given by, for messages: `maxConnections`, or `HERALD_MAX_CONNECTIONS`. */
  maxConnections?: { value: number; name: string };
  maxSubscriptions: number;
  rateLimits: RateLimits;
  logRetention: string;
  logMaxEvents?: number;
  logPartitionSize?: number;
  portalUrl?: string;
  trustProxy?: number | string[];
}

/** The environment variable each option falls back to. */
const variables = {
  database: 'HERALD_DATABASE',
  broker: 'HERALD_BROKER',
  rateLimitStore: 'HERALD_RATE_LIMIT_STORE',
  logLevel: 'HERALD_LOG_LEVEL',
  port: 'PORT',
  maxConnectionsPerKey: 'HERALD_MAX_CONNECTIONS_PER_KEY',
  maxSubscriptions: 'HERALD_MAX_SUBSCRIPTIONS',
  maxConnections: 'HERALD_MAX_CONNECTIONS',
  logRetention: 'HERALD_LOG_RETENTION',
  logMaxEvents: 'HERALD_LOG_MAX_EVENTS',
  logPartitionSize: 'HERALD_LOG_PARTITION_SIZE',
  adminKey: 'HERALD_ADMIN_KEY',
  portalUrl: 'HERALD_PORTAL_URL',
  trustProxy: 'HERALD_TRUST_PROXY',
  rateLimit: 'HERALD_RATE_LIMIT',
  adminRateLimit: 'HERALD_ADMIN_RATE_LIMIT',
  authFailureLimit: 'HERALD_AUTH_FAILURE_LIMIT',
} as const satisfies Partial<Record<keyof HeraldOptions, string>>;

type EnvOption = keyof typeof variables;

/** The environment variable `option` falls back to, as it is set. */
function fromEnv(env: Readonly<Record<string, string | undefined>>, option: EnvOption): string | undefined {
  return env[variables[option]];
}

/** What a message calls a setting: the option when it was given, else its environment variable. */
function settingName(option: EnvOption, value: unknown): string {
  return value === undefined ? variables[option] : option;
}

/** The option, else the environment variable, else `fallback` (none: undefined); throws unless it is a whole number of at least 1. */
function positiveWhole(option: EnvOption, value: number | undefined, env: Readonly<Record<string, string | undefined>>, fallback: number): number;
function positiveWhole(option: EnvOption, value: number | undefined, env: Readonly<Record<string, string | undefined>>): number | undefined;
function positiveWhole(option: EnvOption, value: number | undefined, env: Readonly<Record<string, string | undefined>>, fallback?: number): number | undefined {
  const text = fromEnv(env, option);
  if (value === undefined && !text?.trim()) return fallback;
  const whole = value ?? Number(text);
  if (!Number.isInteger(whole) || whole < 1) throw new Error(`${settingName(option, value)} must be a positive whole number, not "${value ?? text}"`);
  return whole;
}

const durationUnits = { s: 1, m: 60, h: 3600 } as const;

/** The option, else the environment variable (`<requests>/<window>` with `s`, `m` or `h`, e.g. `600/1m`; or `off`), else the default. */
function rateLimitOf(
  option: 'rateLimit' | 'adminRateLimit' | 'authFailureLimit',
  value: RateLimit | false | undefined,
  env: Readonly<Record<string, string | undefined>>,
  fallback: RateLimit | false,
): RateLimit | false {
  const name = settingName(option, value);
  const text = fromEnv(env, option)?.trim();
  let limit = value ?? fallback;
  if (value === undefined && text) {
    const parsed = /^(\d+)\/(\d+)([smh])$/.exec(text);
    if (text === 'off') limit = false;
    else if (parsed) limit = { requests: Number(parsed[1]), window: Number(parsed[2]) * durationUnits[parsed[3] as keyof typeof durationUnits] };
    else throw new Error(`${name} must be <requests>/<window> (e.g. 600/1m, 100/10s, 5000/1h) or off, not "${text}"`);
  }
  if (limit && !(Number.isInteger(limit.requests) && limit.requests >= 1 && Number.isInteger(limit.window) && limit.window >= 1)) {
    throw new Error(`${name} needs a whole number of at least 1 request per whole number of at least 1 second`);
  }
  return limit;
}

const isRedisUrl = (url: string) => /^rediss?:\/\//.test(url);

/** What each seam made of a Redis is called: for messages, and for the `@herald/redis` function to give more options to. */
const seams = {
  broker: { what: 'a broker', maker: 'redisBroker' },
  rateLimitStore: { what: 'a rate-limit store', maker: 'redisRateLimits' },
} as const;

/**
 * The broker or the rate-limit store of `value`: made already when it has `method`; else `{ url, tls }` of a Redis;
 * without it, `memory` or the Redis URL of the variable. Throws, naming the option or the variable, on any other URL,
 * on members besides `url` and `tls`, and on `tls` with a `redis://` URL.
 */
function seamSource<T extends object>(
  option: keyof typeof seams,
  value: T | RedisEndpoint | undefined,
  method: keyof T & string,
  env: Readonly<Record<string, string | undefined>>,
): SeamSource<T> {
  const { what, maker } = seams[option];
  if (value === undefined) {
    const url = fromEnv(env, option) || 'memory';
    if (url === 'memory') return 'memory';
    if (!isRedisUrl(url)) throw new Error(`${variables[option]}: "${shownUrl(url)}" is not ${what} this server knows (memory, or a redis:// or rediss:// URL)`);
    return { url, name: variables[option] };
  }
  if (typeof (value as Record<string, unknown>)[method] === 'function') return { made: value as T };
  const { url, tls, ...others } = value as Partial<RedisEndpoint>;
  if (typeof url !== 'string' || !isRedisUrl(url)) {
    throw new Error(`${option} must be ${what} or { url, tls } of a Redis, whose url is a redis:// or rediss:// URL${typeof url === 'string' ? `, not "${shownUrl(url)}"` : ''}`);
  }
  const extra = Object.keys(others);
  if (extra.length > 0) throw new Error(`${option}: { url, tls } takes no ${extra.join(', ')}; for more options, give ${maker}({ url, ... }) of @herald/redis`);
  // Not ignored: the connection would be in the clear, the certificates unused, and no one told.
  if (tls && !url.startsWith('rediss://')) throw new Error(`${option}: tls needs a rediss:// URL; url is redis://, without TLS`);
  return { url, ...(tls ? { tls } : {}), name: option };
}

/** Shorter configured admin keys are refused: guessable, or typed in as a placeholder. */
const minAdminKeyLength = 32;

function checkAdminKey(key: string, name: string): void {
  if (!/^[\x21-\x7e]+$/.test(key)) {
    throw new Error(`${name} must be visible ASCII characters without spaces: it is sent as "Authorization: Bearer <key>"`);
  }
  if (key.length < minAdminKeyLength) {
    throw new Error(
      `${name} must be at least ${minAdminKeyLength} characters (it has ${key.length}); e.g. \`openssl rand -hex 32\`, or leave it unset to have one generated`,
    );
  }
}

/** Whether `text` can be `portalUrl`: an absolute http(s) URL without a fragment (a portal session's token goes there). */
export function isPortalUrl(text: string): boolean {
  const url = URL.canParse(text) ? new URL(text) : undefined;
  return url !== undefined && ['http:', 'https:'].includes(url.protocol) && !text.includes('#');
}

function checkPortalUrl(text: string, name: string): void {
  if (!isPortalUrl(text)) {
    throw new Error(`${name} must be an absolute http(s) URL without a fragment (the token goes there), e.g. https://api.example.com/portal, not "${text}"`);
  }
}

/** `trustProxy`, else `HERALD_TRUST_PROXY`, as express's `trust proxy` takes it; throws on a hop count below 1 or an address that is none. */
function trustProxyOf(option: HeraldOptions['trustProxy'], env: Readonly<Record<string, string | undefined>>): number | string[] | undefined {
  const text = fromEnv(env, 'trustProxy')?.trim();
  const value = option ?? (text ? (/^\d+$/.test(text) ? Number(text) : text) : undefined);
  if (value === undefined) return undefined;
  const refuse = (why: string) =>
    new Error(`${settingName('trustProxy', option)} must be a number of proxies (1 or more) or addresses and subnets such as loopback, 10.0.0.0/8: ${why}`);
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 1) throw refuse(`not ${value}`);
    return value;
  }
  const list = (typeof value === 'string' ? value.split(',') : [...value]).map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (list.length === 0) throw refuse('none is given');
  try {
    proxyaddr.compile(list);
  } catch (error) {
    throw refuse((error as Error).message);
  }
  return list;
}

/** Reads options, then the environment, then the defaults. Throws on values that make no sense. */
export function resolveOptions(options: HeraldOptions, env: Readonly<Record<string, string | undefined>>): ResolvedOptions {
  const portText = fromEnv(env, 'port');
  const port = options.port ?? Number(portText ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${settingName('port', options.port)} must be a port number, not "${options.port ?? portText}"`);
  const bodyLimit = options.bodyLimit ?? 256 * 1024;
  if (!Number.isInteger(bodyLimit) || bodyLimit <= 0) throw new Error('bodyLimit must be a positive number of bytes');
  const maxConnectionsPerKey = positiveWhole('maxConnectionsPerKey', options.maxConnectionsPerKey, env, 1000);
  const maxSubscriptions = positiveWhole('maxSubscriptions', options.maxSubscriptions, env, 100);
  const maxConnections = positiveWhole('maxConnections', options.maxConnections, env);
  const logRetention = options.logRetention ?? (fromEnv(env, 'logRetention')?.trim() || '30d');
  if (!retentionDuration.safeParse(logRetention).success) {
    throw new Error(
      `${settingName('logRetention', options.logRetention)} must be a whole number of at least 1 and a unit, s, m, h or d (e.g. 90s, 15m, 12h, 30d), not "${logRetention}"`,
    );
  }
  const logMaxEvents = positiveWhole('logMaxEvents', options.logMaxEvents, env);
  const partitionSize = positiveWhole('logPartitionSize', options.logPartitionSize, env);
  const logPartitionSize = partitionSize === undefined ? undefined : checkLogPartitionSize(partitionSize, settingName('logPartitionSize', options.logPartitionSize));
  const adminKey = options.adminKey ?? (fromEnv(env, 'adminKey') || undefined);
  if (adminKey !== undefined) checkAdminKey(adminKey, settingName('adminKey', options.adminKey));
  const portalUrl = options.portalUrl ?? (fromEnv(env, 'portalUrl')?.trim() || undefined);
  if (portalUrl !== undefined) checkPortalUrl(portalUrl, settingName('portalUrl', options.portalUrl));
  const trustProxy = trustProxyOf(options.trustProxy, env);
  return {
    database: options.database ?? (fromEnv(env, 'database') || './data/herald.db'),
    broker: seamSource<Broker>('broker', options.broker, 'publish', env),
    rateLimitStore: seamSource<RateLimitStore>('rateLimitStore', options.rateLimitStore, 'take', env),
    ...(adminKey !== undefined ? { adminKey } : {}),
    port,
    logLevel: options.logLevel ?? (fromEnv(env, 'logLevel') || 'info'),
    bodyLimit,
    maxConnectionsPerKey,
    ...(maxConnections !== undefined ? { maxConnections: { value: maxConnections, name: settingName('maxConnections', options.maxConnections) } } : {}),
    maxSubscriptions,
    logRetention,
    ...(logMaxEvents !== undefined ? { logMaxEvents } : {}),
    ...(logPartitionSize !== undefined ? { logPartitionSize } : {}),
    ...(portalUrl !== undefined ? { portalUrl } : {}),
    ...(trustProxy !== undefined ? { trustProxy } : {}),
    rateLimits: {
      key: rateLimitOf('rateLimit', options.rateLimit, env, { requests: 600, window: 60 }),
      admin: rateLimitOf('adminRateLimit', options.adminRateLimit, env, false),
      authFailures: rateLimitOf('authFailureLimit', options.authFailureLimit, env, { requests: 60, window: 60 }),
    },
  };
}
