import { UnauthorizedError } from './errors.js';
import type { Role } from './store.js';
import type { Subscription } from './subscription.js';

/** Who is calling: an API key, or a stream or portal token derived from one. */
export interface Principal {
  /** The API key or stream token behind the call. */
  keyId: string;
  /** `admin` only for an admin API key: a stream token is never an admin, whoever issued it. */
  role: Role;
  /**
   * A stream token only reads, within its `types` and consumer, on the routes that allow it; a portal token
   * acts as its consumer on the routes that allow it (`RouteDefinition.portalToken`). @default 'api-key'
   */
  credential?: 'api-key' | 'stream-token' | 'portal-token';
  /** The consumer a `consumer` principal is bound to. */
  consumer?: string;
  /** A stream token's type scope. @default every type */
  types?: readonly string[];
  /** When a stream or portal token expires (RFC 3339). @default never */
  expiresAt?: string;
  /** The API key that issued this stream or portal token. */
  parentKeyId?: string;
}

/** Whether `principal` authenticated with a stream token (`hs_…`). */
export function isStreamToken(principal: Principal): boolean {
  return principal.credential === 'stream-token';
}

/** Whether `principal` authenticated with a portal token (`hp_…`), made by `POST /v1/portal-sessions`. */
export function isPortalToken(principal: Principal): boolean {
  return principal.credential === 'portal-token';
}

/**
 * Whose events `principal` may read, as `ReadOptions.visibleTo`: `undefined` (every event) for an admin
 * key; otherwise those addressed to everyone and to its consumer. A stream token issued for no consumer
 * reads only the events addressed to everyone (`''`, which no consumer id can be).
 */
export function visibleTo(principal: Principal): string | undefined {
  if (principal.role === 'admin') return undefined;
  return principal.consumer ?? '';
}

/** Admins reach every subscription; a consumer only its own. */
export function canAccess(principal: Principal, subscription: Pick<Subscription, 'consumer'>): boolean {
  return principal.role === 'admin' || principal.consumer === subscription.consumer;
}

/** The credential of an `Authorization: Bearer <key>` header; throws UnauthorizedError for any other form. */
export function bearerCredential(header: string): string {
  const credential = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  if (credential === undefined) throw new UnauthorizedError('The Authorization header must be "Bearer <key>"');
  return credential;
}

/** Whether `principal` acts with the key `keyId`: the key itself, or a stream token it issued (revoking the key ends both). */
export function actsWithKey(principal: Principal, keyId: string): boolean {
  return principal.keyId === keyId || principal.parentKeyId === keyId;
}
