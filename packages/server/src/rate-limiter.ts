import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv6 } from 'node:net';
import { type Logger, memoryRateLimits, type Principal, type RateLimitStore, RateLimitedError, UnauthorizedError, type WindowCount } from '@herald/core';
import type { RateLimit } from './options.js';

/** The limits' names, in the `RateLimit` fields and in the metrics. */
export type LimitName = 'key' | 'admin' | 'auth-failures';
export const limitNames: readonly LimitName[] = ['key', 'admin', 'auth-failures'];

/** The state of one client's quota, as the `RateLimit` header tells it. */
interface Quota {
  /** The policy's name in the headers. */
  policy: LimitName;
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

/** Told of what the limits refuse, for the metrics. */
export interface LimitEvents {
  /** A request (or a WebSocket credential) refused with 429 by the limit of that name. */
  limited(limit: LimitName): void;
  /** A credential refused with 401. */
  authenticationFailed(): void;
}

/** One rate limit: its name in the headers and before each key, and this node's own counts of it. */
interface Policy {
  name: LimitName;
  limit: RateLimit;
  /** Counts in this node's memory: when no store is shared, and while the shared one fails. */
  own: RateLimitStore;
}

const policy = (name: LimitName, limit: RateLimit): Policy => ({ name, limit, own: memoryRateLimits() });

/** How long after a failure of the shared store the node counts on its own before it asks the store again, in ms. */
const sharedRetryDelay = 1_000;

/**
 * Authenticates REST requests within the rate limits: an address that failed too often is refused before
 * its credential is even looked at; an authenticated key spends one request of its quota. Each node counts
 * in its own memory (each limit apart, so that a flood of one cannot push the others' counts out), or in
 * `shared`, a store of the cluster; while that fails, each node counts on its own, and says so once.
 */
export class RequestLimiter {
  readonly #key?: Policy;
  readonly #admin?: Policy;
  readonly #failures?: Policy;
  readonly #shared?: RateLimitStore;
  readonly #logger?: Logger;
  readonly #events?: LimitEvents;
  /** While the shared store fails, when to ask it again (until then requests do not wait on it); 0 while it answers. */
  #sharedRetryAt = 0;

  constructor(limits: RateLimits, shared?: RateLimitStore, logger?: Logger, events?: LimitEvents) {
    if (limits.key) this.#key = policy('key', limits.key);
    if (limits.admin) this.#admin = policy('admin', limits.admin);
    if (limits.authFailures) this.#failures = policy('auth-failures', limits.authFailures);
    if (shared) this.#shared = shared;
    if (logger) this.#logger = logger;
    if (events) this.#events = events;
  }

  /**
   * Runs `authenticate` for the request unless its address is over its failures, and spends one request of
   * the key's quota; sets the RateLimit fields on `response`. `spend: false` only refuses a key that has no
   * request left: a long poll, which {@link spend}s one once answered if it was a wasted one.
   */
  async authenticate(request: IncomingMessage, response: ServerResponse, authenticate: () => Promise<Principal>, spend = true): Promise<Principal> {
    const principal = await this.credential(requestIp(request), authenticate, (quota) => setHeaders(response, quota));
    const policy = this.#policyOf(principal);
    if (policy) {
      const { quota, allowed } = spend ? await this.#take(policy, principal.keyId) : await this.#peek(policy, principal.keyId);
      if (!allowed) throw this.#limited(`This key used its ${quota.limit.requests} requests per ${quota.limit.window} s; try again in ${quota.reset} s`, quota);
      setHeaders(response, quota);
    }
    return principal;
  }

  /**
   * Spends one request of the key's quota after its request was answered (see {@link authenticate}'s `spend`),
   * and sets the RateLimit fields on `response` while they can still be sent. Refuses nothing: the next request does.
   */
  async spend(principal: Principal, response: ServerResponse): Promise<void> {
    const policy = this.#policyOf(principal);
    if (!policy) return;
    const { quota } = await this.#take(policy, principal.keyId);
    if (!response.headersSent) setHeaders(response, quota);
  }

  #policyOf(principal: Principal): Policy | undefined {
    return principal.role === 'admin' ? this.#admin : this.#key;
  }

  /**
   * Runs `authenticate` for a credential from `ip` unless that address is over its failed authentications
   * (then a RateLimitedError, without looking), and counts it when it fails (`failed` is told the quota).
   */
  async credential(ip: string, authenticate: () => Promise<Principal>, failed?: (quota: Quota) => void): Promise<Principal> {
    const failures = this.#failures;
    const address = addressBlock(ip);
    if (failures) {
      const { quota, allowed } = await this.#peek(failures, address);
      if (!allowed) throw this.#limited(`Too many failed authentications from this address; try again in ${quota.reset} s`, quota);
    }
    try {
      return await authenticate();
    } catch (error) {
      if (error instanceof UnauthorizedError) {
        this.#events?.authenticationFailed();
        if (failures) {
          const { quota } = await this.#take(failures, address);
          failed?.(quota);
        }
      }
      throw error;
    }
  }

  /** Over a quota: 429 with `Retry-After` and the quota's RateLimit fields, counted. */
  #limited(message: string, quota: Quota): RateLimitedError {
    this.#events?.limited(quota.policy);
    return new RateLimitedError(message, quota.reset, rateLimitHeaders(quota));
  }

  async #take(policy: Policy, id: string): Promise<{ quota: Quota; allowed: boolean }> {
    const count = await this.#counted(policy, id, (store, key) => store.take(key, policy.limit.requests, policy.limit.window * 1000));
    return { quota: quotaOf(policy, count), allowed: count.allowed };
  }

  /** The key's quota as it stands, counting nothing: allowed while a request is left. */
  async #peek(policy: Policy, id: string): Promise<{ quota: Quota; allowed: boolean }> {
    const quota = quotaOf(policy, await this.#counted(policy, id, (store, key) => store.peek(key)));
    return { quota, allowed: quota.remaining > 0 };
  }

  /**
   * `count` of `id` under `policy`: in the shared store, or in the node's own while there is none or it
   * fails. A store that failed is asked again a second later, so that a hung one costs one request its
   * timeout, not every request.
   */
  async #counted<T>(policy: Policy, id: string, count: (store: RateLimitStore, key: string) => Promise<T>): Promise<T> {
    if (!this.#shared || Date.now() < this.#sharedRetryAt) return count(policy.own, id);
    try {
      const counted = await count(this.#shared, `${policy.name}:${id}`);
      if (this.#sharedRetryAt !== 0) {
        this.#sharedRetryAt = 0;
        this.#logger?.info('the rate-limit store answers again; the rate limits are counted in it again');
      }
      return counted;
    } catch (error) {
      if (this.#sharedRetryAt === 0) this.#logger?.warn({ err: error }, 'the rate-limit store failed; this node counts the rate limits on its own until it answers');
      this.#sharedRetryAt = Date.now() + sharedRetryDelay;
      return count(policy.own, id);
    }
  }
}

/** The quota of `policy` in `window`: the whole quota when none is open. */
function quotaOf({ name, limit }: Policy, window: WindowCount): Quota {
  const reset = window.resetMs > 0 ? Math.max(1, Math.ceil(window.resetMs / 1000)) : limit.window;
  return { policy: name, limit, remaining: Math.max(0, limit.requests - window.used), reset };
}

function setHeaders(response: ServerResponse, quota: Quota): void {
  for (const [name, value] of Object.entries(rateLimitHeaders(quota))) response.setHeader(name, value);
}
