import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv6 } from 'node:net';
import { type Principal, RateLimitedError, UnauthorizedError } from '@herald/core';
import type { RateLimit } from './options.js';

/** The state of one client's quota, as the `RateLimit` header tells it. */
interface Quota {
  /** The policy's name in the headers. */
  policy: string;
  limit: RateLimit;
  /** Requests left in this window (after the one being answered). */
  remaining: number;
  /** Whole seconds until the window ends and the quota is whole again (at least 1). */
  reset: number;
}

/**
 * The `RateLimit` and `RateLimit-Policy` fields of draft-ietf-httpapi-ratelimit-headers (its structured-field
 * form, e.g. `RateLimit-Policy: "key";q=600;w=60` and `RateLimit: "key";r=12;t=30`).
 */
function rateLimitHeaders({ policy, limit, remaining, reset }: Quota): Record<string, string> {
  return { 'RateLimit-Policy': `"${policy}";q=${limit.requests};w=${limit.window}`, RateLimit: `"${policy}";r=${remaining};t=${reset}` };
}

/** Over a quota: 429 with `Retry-After` and the quota's RateLimit fields. */
const rateLimited = (message: string, quota: Quota) => new RateLimitedError(message, quota.reset, rateLimitHeaders(quota));

/** How many clients one policy keeps count of at most; past it the oldest windows are forgotten. */
const defaultMaxKeys = 100_000;

/**
 * Fixed-window counters by key. A window that has ended is forgotten (it counts as nothing), so what is
 * kept is the keys that made requests within one window, and never more than `maxKeys` of them.
 */
export class WindowCounter {
  readonly #windows = new Map<string, { start: number; used: number }>();
  readonly #policy: string;
  readonly #limit: RateLimit;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  #sweptAt: number;

  constructor(policy: string, limit: RateLimit, now: () => number = Date.now, maxKeys = defaultMaxKeys) {
    this.#policy = policy;
    this.#limit = limit;
    this.#windowMs = limit.window * 1000;
    this.#now = now;
    this.#maxKeys = maxKeys;
    this.#sweptAt = now();
  }

  /** Keys with a window still open. */
  get size(): number {
    return this.#windows.size;
  }

  /** The quota of `key` without counting a request: `remaining` 0 means the next one is refused. */
  peek(key: string): Quota {
    const now = this.#now();
    return this.#quota(this.#live(key, now), now);
  }

  /** Counts one request of `key`, unless its quota is used up: then `allowed` is false and the request must be refused. */
  take(key: string): { quota: Quota; allowed: boolean } {
    const now = this.#now();
    this.#sweep(now);
    let window = this.#live(key, now);
    if (window === undefined) {
      if (this.#windows.size >= this.#maxKeys) this.#forgetOldest();
      window = { start: now, used: 0 };
      this.#windows.set(key, window);
    }
    const allowed = window.used < this.#limit.requests;
    if (allowed) window.used += 1;
    return { quota: this.#quota(window, now), allowed };
  }

  #live(key: string, now: number): { start: number; used: number } | undefined {
    const window = this.#windows.get(key);
    if (window === undefined || now - window.start < this.#windowMs) return window;
    this.#windows.delete(key);
    return undefined;
  }

  #quota(window: { start: number; used: number } | undefined, now: number): Quota {
    const reset = window ? Math.max(1, Math.ceil((window.start + this.#windowMs - now) / 1000)) : this.#limit.window;
    return { policy: this.#policy, limit: this.#limit, remaining: this.#limit.requests - (window?.used ?? 0), reset };
  }

  /** Forgets ended windows, at most once per window length. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < this.#windowMs) return;
    this.#sweptAt = now;
    for (const [key, window] of this.#windows) if (now - window.start >= this.#windowMs) this.#windows.delete(key);
  }

  /** Windows are added in the order they open: the first is the oldest. */
  #forgetOldest(): void {
    const oldest = this.#windows.keys().next();
    if (!oldest.done) this.#windows.delete(oldest.value);
  }
}

/** The rate limits of the REST API; `false` turns one off. */
export interface RateLimits {
  /** Requests per window of each consumer key and each stream token. */
  key: RateLimit | false;
  /** Requests per window of each admin key. */
  admin: RateLimit | false;
  /** Failed authentications per window from one client address (an IPv6 /64 counts as one address). */
  authFailures: RateLimit | false;
}

/** The request's client address as express sees it (`trust proxy` applies), an IPv6 address as its /64. */
export function clientAddress(request: IncomingMessage & { ip?: string }): string {
  return addressBlock(requestIp(request));
}

const requestIp = (request: IncomingMessage & { ip?: string }) => request.ip ?? request.socket.remoteAddress ?? '';

/** An address as the failed authentications count it: an IPv6 address as its /64. */
function addressBlock(ip: string): string {
  const address = ip.replace(/%.*$/, '');
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice('::ffff:'.length);
  if (!isIPv6(address)) return address;
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

/**
 * Authenticates REST requests within the rate limits, on this node: an address that failed too often is
 * refused before its credential is even looked at; an authenticated key spends one request of its quota.
 */
export class RequestLimiter {
  readonly #key?: WindowCounter;
  readonly #admin?: WindowCounter;
  readonly #failures?: WindowCounter;

  constructor(limits: RateLimits, now: () => number = Date.now) {
    if (limits.key) this.#key = new WindowCounter('key', limits.key, now);
    if (limits.admin) this.#admin = new WindowCounter('admin', limits.admin, now);
    if (limits.authFailures) this.#failures = new WindowCounter('auth-failures', limits.authFailures, now);
  }

  /** Runs `authenticate` for the request unless its address is over its failures; sets the RateLimit fields on `response`. */
  async authenticate(request: IncomingMessage, response: ServerResponse, authenticate: () => Promise<Principal>): Promise<Principal> {
    const principal = await this.credential(requestIp(request), authenticate, (quota) => setHeaders(response, quota));
    const counter = principal.role === 'admin' ? this.#admin : this.#key;
    if (counter) {
      const { quota, allowed } = counter.take(principal.keyId);
      if (!allowed) throw rateLimited(`This key used its ${quota.limit.requests} requests per ${quota.limit.window} s; try again in ${quota.reset} s`, quota);
      setHeaders(response, quota);
    }
    return principal;
  }

  /**
   * Runs `authenticate` for a credential from `ip` unless that address is over its failed authentications
   * (then a RateLimitedError, without looking), and counts it when it fails (`failed` is told the quota).
   */
  async credential(ip: string, authenticate: () => Promise<Principal>, failed?: (quota: Quota) => void): Promise<Principal> {
    const failures = this.#failures;
    if (!failures) return authenticate();
    const address = addressBlock(ip);
    const before = failures.peek(address);
    if (before.remaining <= 0) throw rateLimited(`Too many failed authentications from this address; try again in ${before.reset} s`, before);
    try {
      return await authenticate();
    } catch (error) {
      if (error instanceof UnauthorizedError) {
        const { quota } = failures.take(address);
        failed?.(quota);
      }
      throw error;
    }
  }
}

function setHeaders(response: ServerResponse, quota: Quota): void {
  for (const [name, value] of Object.entries(rateLimitHeaders(quota))) response.setHeader(name, value);
}
