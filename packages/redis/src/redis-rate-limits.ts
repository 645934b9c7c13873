import { type RateLimitStore, shownUrl, type WindowCount } from '@herald/core';
import { type Redis, ReplyError } from 'ioredis';
import { connectAll, type RedisOptions, redisConnection, redisDefaults } from './redis-connection.js';

export interface RedisRateLimitsOptions extends RedisOptions {
  /** How long a count may take before it fails (the server then counts on its own node), in ms. @default 500 */
  commandTimeout?: number;
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
  readonly #commandTimeout: number;
  readonly #redis: CountingRedis;
  #connected?: Promise<void>;
  #closed = false;

  constructor(options: RedisRateLimitsOptions) {
    const { prefix, ...connection } = redisDefaults(options, 'redisRateLimits');
    this.#url = connection.url;
    this.#prefix = prefix;
    this.#connectTimeout = connection.connectTimeout;
    this.#commandTimeout = options.commandTimeout ?? 500;
    const redis = redisConnection({ ...connection, role: 'rate-limits', prefix, commandTimeout: this.#commandTimeout, closed: () => this.#closed });
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
    const [used, ttl, allowed] = await this.#redis.heraldTake(this.#key(key), limit, windowMs).catch((error: unknown) => this.#failed(error));
    return { used, resetMs: Math.max(0, ttl), allowed: allowed === 1 };
  }

  async peek(key: string): Promise<WindowCount> {
    const [[, used], [, ttl]] = (await this.#redis
      .multi()
      .get(this.#key(key))
      .pttl(this.#key(key))
      .exec()
      .catch((error: unknown) => this.#failed(error))) as [[null, string | null], [null, number]];
    return ttl > 0 ? { used: Number(used ?? 0), resetMs: ttl } : { used: 0, resetMs: 0 };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  /**
   * Throws what a count's failure means for the operator, rather than ioredis's words ("Stream isn't writeable and
   * enableOfflineQueue options is false"), which it keeps as `redisError`. An error Redis answered is its own words.
   */
  #failed(error: unknown): never {
    if (error instanceof ReplyError || this.#closed) throw error;
    const url = shownUrl(this.#url);
    // ioredis's words for `commandTimeout`; any other failure is of the connection.
    const timedOut = error instanceof Error && error.message === 'Command timed out';
    const message = timedOut ? `Redis at ${url} did not answer within ${this.#commandTimeout} ms` : `Redis is not reachable at ${url}: the connection is lost; reconnecting`;
    throw Object.assign(new Error(message), { redisError: error });
  }

  #key(key: string): string {
    return `${this.#prefix}herald:rate-limit:${key}`;
  }
}
