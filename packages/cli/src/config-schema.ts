import { type Broker, type CompactionMode, checkLogPartitionSize, compactionMode, type RateLimitStore, retentionDuration } from '@herald/core';
import { isPortalUrl, type RateLimit } from '@herald/server';
import { z } from 'zod';
import type { ConfigTls } from './tls-files.js';

/**
 * An event type in `herald.config`: a module path (relative to the config) or a package whose exported
 * `defineEventType(...)` results, alone or in arrays, are the types; or one type given inline.
 */
export type EventTypeSource = string | EventTypeObject;

/** An event type given inline; a `defineEventType(...)` result is one too. */
export interface EventTypeObject {
  name: string;
  description?: string;
  /** The data's JSON Schema, the path of a file holding it (relative to the config), or a zod schema. @default any data */
  schema?: string | Record<string, unknown> | z.ZodType;
  /** How long its events are kept, instead of the log's `logRetention`: `90s`, `15m`, `12h`, `365d`. @default the log's */
  retention?: string;
  /** `subject`: beyond its retention, the newest event of each subject is kept. @default none */
  compaction?: CompactionMode;
}

/**
 * A Redis broker or rate-limit store that a JSON config can describe: its URL and its TLS settings, whose
 * `{ "file": ... }` members are read at start. Herald makes it with `@herald/redis`, installed beside the CLI.
 */
export interface RedisConfig {
  /** `rediss://host:port` for TLS (`redis://` takes no `tls`). */
  url: string;
  /** What TLS trusts and presents: `ca`, `cert` and `key`, each PEM text or `{ "file": path }`. @default Node.js's trusted authorities, no client certificate */
  tls?: ConfigTls;
}

/** `herald.config.{ts,mts,js,mjs,json}`: what `herald serve` runs. Every field falls back to its environment variable, then its default. */
export interface HeraldConfig {
  /** `PORT`: the port to listen on. @default 3000 */
  port?: number;
  /** The address to listen on. @default '::' (every interface) */
  host?: string;
  /** `HERALD_DATABASE`: a SQLite file (relative to the config), `:memory:`, or a `postgres://` URL. @default './data/herald.db' */
  database?: string;
  /**
   * `HERALD_BROKER`: `memory` for one process, a `redis://` URL for several, or `{ url, tls }` for a Redis over TLS
   * (see {@link RedisConfig}); in a `.ts` or `.js` config, a broker too, such as `redisBroker({ url, tls })`. @default 'memory'
   */
  broker?: string | RedisConfig | Broker;
  /** `HERALD_ADMIN_KEY`: the first admin key. When absent and none is stored, one is generated and logged once, at warn level. */
  adminKey?: string;
  /** `HERALD_LOG_LEVEL`: pino's level. @default 'info' */
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** The envelope's `source`. @default '/herald' */
  source?: string;
  /** Largest accepted request body, in bytes. @default 262144 */
  bodyLimit?: number;
  /** How long a stop waits for in-flight requests, in ms. @default 10000 */
  shutdownTimeout?: number;
  /** `HERALD_MAX_CONNECTIONS_PER_KEY`: long-lived connections per key, every transport together. @default 1000 */
  maxConnectionsPerKey?: number;
  /** `HERALD_MAX_CONNECTIONS`: long-lived connections in all, every key and transport together. @default what the open-files limit leaves room for (on Linux) */
  maxConnections?: number;
  /** `HERALD_MAX_SUBSCRIPTIONS`: durable subscriptions one consumer may hold. @default 100 */
  maxSubscriptions?: number;
  /** `HERALD_LOG_RETENTION`: how long events stay in the log (`90s`, `15m`, `12h`, `30d`), unless their type has a retention of its own. @default '30d' */
  logRetention?: string;
  /** `HERALD_LOG_MAX_EVENTS`: at most this many of the newest events stay in the log, whatever their type. @default no limit */
  logMaxEvents?: number;
  /** `HERALD_LOG_PARTITION_SIZE`: seqs per partition of the log on PostgreSQL, from 1,000 to 100,000,000. @default 100000 */
  logPartitionSize?: number;
  /** `HERALD_PORTAL_URL`: where consumers open the portal; a portal session's `url` is it with `#token=hp_…`. @default `/portal` on the request's host */
  portalUrl?: string;
  /** `HERALD_RATE_LIMIT`: REST requests per consumer key and per stream token, `window` in seconds; `false` for none. @default { requests: 600, window: 60 } */
  rateLimit?: RateLimit | false;
  /** `HERALD_ADMIN_RATE_LIMIT`: REST requests per admin key. @default false */
  adminRateLimit?: RateLimit | false;
  /** `HERALD_AUTH_FAILURE_LIMIT`: failed authentications per client address. @default { requests: 60, window: 60 } */
  authFailureLimit?: RateLimit | false;
  /**
   * `HERALD_RATE_LIMIT_STORE`: where the rate limits are counted: `memory`, each node on its own, or a `redis://` URL
   * or `{ url, tls }` (see {@link RedisConfig}), the nodes together; in a `.ts` or `.js` config, a store too, such as
   * `redisRateLimits({ url, tls })`. @default 'memory'
   */
  rateLimitStore?: string | RedisConfig | RateLimitStore;
  /**
   * `HERALD_TRUST_PROXY`: the reverse proxies in front of Herald whose `X-Forwarded-*` headers it believes: how
   * many (`1`), or their addresses and subnets (`'loopback'`, `['10.0.0.0/8', 'fd00::/8']`). @default none
   */
  trustProxy?: number | string | string[];
  /**
   * The transports to mount, each with its factory's options (`true` for the defaults). A short name is
   * a package of Herald's: `amqp` is `@herald/amqp`, whose export `amqp` is the factory. A module path
   * (`./mqtt-transport.js`) or a scoped package (`@acme/herald-mqtt`) is called through its default export.
   * An option `tls` ({@link ConfigTls}) has its `{ "file": ... }` members read, as PEM text, before the factory is called.
   * @default { webhook: {}, websocket: {}, sse: {} }
   */
  transports?: Record<string, true | Record<string, unknown>>;
  /** The event-type catalog. Types registered over REST are added to it. @default [] */
  eventTypes?: EventTypeSource | EventTypeSource[];
}

/** Types `herald.config.ts`: `export default defineConfig({ ... })`. */
export function defineConfig(config: HeraldConfig): HeraldConfig {
  return config;
}

/** A transport's name: short (`webhook`), a module path, or a scoped package. */
export const transportKey = z
  .string()
  .regex(/^(?:[a-z][a-z0-9-]*|\.{1,2}\/.+|\/.+|@[^/]+\/.+)$/, 'a transport is a short name like "webhook", a module path like "./my-transport.js", or a scoped package');

/** A value made by zod (a `defineEventType` schema), as opposed to a JSON Schema. */
export function isZodSchema(value: unknown): value is z.ZodType {
  return typeof value === 'object' && value !== null && typeof (value as { safeParse?: unknown }).safeParse === 'function';
}

/** Checks an {@link EventTypeObject}. */
export const eventTypeObject = z.strictObject({
  name: z.string(),
  description: z.string().optional(),
  schema: z.union([z.string().min(1), z.record(z.string(), z.unknown()), z.custom<z.ZodType>(isZodSchema, 'a zod schema')]).optional(),
  retention: retentionDuration.optional(),
  compaction: compactionMode.optional(),
});

/** A transport's options: `true` for the defaults, or an object. */
export const transportOptions = z.union([z.literal(true), z.record(z.string(), z.unknown())]);

/** `memory`, or a `redis://` URL: where the broker rings, or where the rate limits are counted. */
const storeUrl = /^(?:memory|rediss?:\/\/.+)$/;

/** A PEM value of {@link ConfigTls}: PEM text, `{ file }` (read later); in a `.ts` config, a Buffer or a key's `{ pem, passphrase }` too. */
function isPemSource(value: unknown): boolean {
  if (typeof value === 'string') return value !== '';
  if (Buffer.isBuffer(value)) return true;
  if (!isDataObject(value)) return false;
  return 'pem' in value || (Object.keys(value).length === 1 && typeof value.file === 'string' && value.file !== '');
}

const pemMember = z.custom((value) => isPemSource(value) || (Array.isArray(value) && value.length > 0 && value.every(isPemSource)), {
  message: 'expected PEM text, { "file": "<path of a PEM file>" }, or a list of them',
});

/** Checks a {@link RedisConfig} (`urlOr` lets any data object with a `url` through, for this to say what is wrong in it). */
export const redisConfigSchema = z
  .strictObject({
    url: z.string().regex(/^rediss?:\/\/.+/, 'must be a redis:// or rediss:// URL'),
    tls: z.strictObject({ ca: pemMember.optional(), cert: pemMember.optional(), key: pemMember.optional() }).optional(),
  })
  .refine(({ url, tls }) => !tls || url.startsWith('rediss://'), { path: ['tls'], message: 'needs a rediss:// URL; url is redis://, without TLS' });

/** A plain object of data: what JSON gives, and no broker or store an app made (those have methods). */
function isDataObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.getPrototypeOf(value) === Object.prototype &&
    !Object.values(value).some((member) => typeof member === 'function')
  );
}

/** Whether the config gives a {@link RedisConfig} (rather than a broker or a store it made). */
export function isRedisConfig(value: unknown): value is RedisConfig {
  return isDataObject(value) && 'url' in value;
}

/** `memory`, a `redis://` URL, `{ url, tls }`, or an object with the named methods (`redisBroker(...)`, `redisRateLimits(...)`). */
function urlOr<T>(methods: readonly string[], example: string) {
  return z.custom<string | RedisConfig | T>(
    (value) =>
      typeof value === 'string'
        ? storeUrl.test(value)
        : isRedisConfig(value) || (typeof value === 'object' && value !== null && methods.every((method) => typeof (value as Record<string, unknown>)[method] === 'function')),
    `expected "memory", a redis:// URL, { "url": "rediss://...", "tls": {...} }, or ${example}`,
  );
}

/** A rate limit as `createHerald` takes it: `requests` per `window` seconds, or `false` for none. */
const rateLimitSchema = z.union([z.literal(false), z.strictObject({ requests: z.number().int().min(1), window: z.number().int().min(1) })]);

/** Whether createHerald takes it as `logPartitionSize`. */
function isLogPartitionSize(size: number): boolean {
  try {
    checkLogPartitionSize(size);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks a config's fields; every unknown field is a problem too. The entries of `transports` and
 * `eventTypes` are checked one by one as they are loaded, so that one bad entry hides no other problem.
 */
export const heraldConfigSchema = z.strictObject({
  port: z.number().int().min(0).max(65535).optional(),
  host: z.string().min(1).optional(),
  database: z.string().min(1).optional(),
  broker: urlOr<Broker>(['publish', 'subscribe', 'close'], 'a broker such as redisBroker({ url })').optional(),
  adminKey: z.string().min(32, 'must be at least 32 characters').optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  source: z.string().min(1).optional(),
  bodyLimit: z.number().int().positive().optional(),
  shutdownTimeout: z.number().int().nonnegative().optional(),
  maxConnectionsPerKey: z.number().int().positive().optional(),
  maxConnections: z.number().int().positive().optional(),
  maxSubscriptions: z.number().int().positive().optional(),
  logRetention: retentionDuration.optional(),
  logMaxEvents: z.number().int().positive().optional(),
  logPartitionSize: z.number().refine(isLogPartitionSize, 'must be a whole number from 1,000 to 100,000,000').optional(),
  portalUrl: z
    .string()
    .refine(isPortalUrl, 'must be an absolute http(s) URL without a fragment (the token goes there), e.g. https://api.example.com/portal')
    .optional(),
  rateLimit: rateLimitSchema.optional(),
  adminRateLimit: rateLimitSchema.optional(),
  authFailureLimit: rateLimitSchema.optional(),
  rateLimitStore: urlOr<RateLimitStore>(['take', 'peek'], 'a store such as redisRateLimits({ url })').optional(),
  trustProxy: z.union([z.number().int().min(1), z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  transports: z.record(z.string(), z.unknown()).optional(),
  eventTypes: z.unknown().optional(),
});
