import type { Logger, RateLimitStore, WindowCount } from '@herald/core';
import type { Redis } from 'ioredis';
import { connectAll, redisConnection } from './redis-connection.js';

export interface RedisRateLimitsOptions {
  /** Where Redis is: `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /** Put before every key, so several Herald deployments can share one Redis. @default '' */
  prefix?: string;
  /** How long `init()` waits for Redis before it fails, in ms. @default 10000 */
  connectTimeout?: number;
  /** How long a count may take before it fails (the server then counts on its own node), in ms. @default 500 */
  commandTimeout?: number;
  /** The longest wait between two reconnection attempts, in ms. @default 2000 */
  maxReconnectDelay?: number;
  /** @default silent */
  logger?: Logger;
}

/**
 * Counts a hit unless the window has the limit already; the first hit opens the window. Atomic in Redis, so
 * nodes counting at once never count past the limit. Returns the hits counted, the ms left and whether it counted.
 */
const takeScript = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local allowed = 0
if used < tonumber(ARGV[1]) then
  used = redis.call('INCR', KEYS[1])
  allowed = 1
  if used == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return {used, redis.call('PTTL', KEYS[1]), allowed}
`;

/**
 * The REST rate limits counted in Redis, for several nodes: a key's requests count against one quota
 * whichever node they reach. Windows are timed by Redis's clock and end by expiry, so Redis keeps only the
 * keys used within a window. Give it to `createHerald({ rateLimitStore })`, or set
 * `HERALD_RATE_LIMIT_STORE=redis://…`. While Redis does not answer, each node counts on its own.
 */
export function redisRateLimits(options: RedisRateLimitsOptions = {}): RateLimitStore {
  return new RedisRateLimits(options);
}

type TakeAnswer = [used: number, ttl: number, allowed: number];
type CountingRedis = Redis & { heraldTake(key: string, limit: number, windowMs: number): Promise<TakeAnswer> };

class RedisRateLimits implements RateLimitStore {
  readonly #url: string;
  readonly #prefix: string;
  readonly #connectTimeout: number;
  readonly #redis: CountingRedis;
  #connected?: Promise<void>;
  #closed = false;

  constructor(options: RedisRateLimitsOptions) {
    this.#url = options.url ?? 'redis://127.0.0.1:6379';
    if (!/^rediss?:\/\//.test(this.#url)) throw new Error('redisRateLimits: `url` must start with redis:// or rediss://');
    this.#prefix = options.prefix ?? '';
    this.#connectTimeout = options.connectTimeout ?? 10_000;
    const redis = redisConnection({
      url: this.#url,
      role: 'rate-limits',
      connectTimeout: this.#connectTimeout,
      commandTimeout: options.commandTimeout ?? 500,
      maxReconnectDelay: options.maxReconnectDelay ?? 2_000,
      closed: () => this.#closed,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    redis.defineCommand('heraldTake', { numberOfKeys: 1, lua: takeScript });
    this.#redis = redis as CountingRedis;
  }

  init(): Promise<void> {
    this.#connected ??= connectAll([this.#redis], this.#url, this.#connectTimeout).catch((error: unknown) => {
      this.#connected = undefined;
      throw error;
    });
    return this.#connected;
  }

  async take(key: string, limit: number, windowMs: number): Promise<WindowCount & { allowed: boolean }> {
    const [used, ttl, allowed] = await this.#redis.heraldTake(this.#key(key), limit, windowMs);
    return { used, resetMs: Math.max(0, ttl), allowed: allowed === 1 };
  }

  async peek(key: string): Promise<WindowCount> {
    const [[, used], [, ttl]] = (await this.#redis.multi().get(this.#key(key)).pttl(this.#key(key)).exec()) as [[null, string | null], [null, number]];
    return ttl > 0 ? { used: Number(used ?? 0), resetMs: ttl } : { used: 0, resetMs: 0 };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  #key(key: string): string {
    return `${this.#prefix}herald:rate-limit:${key}`;
  }
}
