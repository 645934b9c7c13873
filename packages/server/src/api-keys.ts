import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { type ApiKeyRecord, type Broker, type Logger, type Principal, type Role, silentLogger, type Store, UnauthorizedError } from '@herald/core';

const keyFormat = /^(hk|hs|hp)_([0-9a-f]{20})_([0-9a-f]{64})$/;
const idPrefix = { hk: 'key', hs: 'stk', hp: 'ptl' } as const;
type KeyKind = keyof typeof idPrefix;
const envAdminKeyId = 'key_admin';
const revokedChannel = 'herald:key-revoked';
/** How far back a catch-up looks beyond the last one, for clocks of nodes that disagree a little. */
const clockSkewMargin = 60_000;
/** How long a looked-up key is trusted before it is read again (revocation on other nodes). */
const cacheMilliseconds = 5_000;
/** How often the cache is swept of what it may no longer use. */
const sweepMilliseconds = 1_000;
/** How long after a key's recorded use its next use is written: at most once a minute per key and node. */
const defaultLastUseInterval = 60_000;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The kind of credential a stored record is, by its id's prefix. */
function credentialOf(id: string): NonNullable<Principal['credential']> {
  if (id.startsWith(`${idPrefix.hs}_`)) return 'stream-token';
  if (id.startsWith(`${idPrefix.hp}_`)) return 'portal-token';
  return 'api-key';
}

const credentialName = { 'api-key': 'API key', 'stream-token': 'stream token', 'portal-token': 'portal token' } as const;

/** What a stream token may be limited to. */
export interface StreamTokenRequest {
  /** The consumer the token acts for; an admin may name any, a consumer only itself. */
  consumer?: string;
  /** Event types and patterns the token is limited to. @default every type */
  types?: string[];
  /** Lifetime in seconds. @default 300 */
  ttl?: number;
}

/** What {@link ApiKeys} works with besides its store and broker. */
export interface ApiKeysOptions {
  /** Told, as a warning, when a key's last use could not be written. @default silentLogger */
  logger?: Logger;
  /**
   * How long after a key's last recorded use, in ms, its next use is written (`lastUsedAt`): uses in between write
   * nothing, so a key writes at most once per interval on each node, and not while another node wrote it lately.
   * @default 60_000
   */
  lastUseInterval?: number;
  /** The clock, in ms since the epoch. @default Date.now */
  now?: () => number;
}

/** What a new API key says about itself besides its role and consumer. */
export interface NewKeyDetails {
  /** What it is for (1 to 100 characters). @default none */
  name?: string;
  /** The id of the admin key that asked for it. @default none: made by code, not by a request */
  createdBy?: string;
}

/**
 * Issues and checks API keys (`hk_<id>_<secret>`), stream tokens (`hs_<id>_<secret>`, short-lived,
 * for browsers that cannot send headers) and portal tokens (`hp_<id>_<secret>`, a consumer's session in
 * the portal). Only their SHA-256 is stored, compared in constant time. An API key's use is written as its
 * `lastUsedAt`, off the request's path and at most once per `lastUseInterval`.
 */
export class ApiKeys {
  readonly #store: Store;
  readonly #broker: Broker;
  readonly #cache = new Map<string, { record: ApiKeyRecord; at: number }>();
  readonly #revokeListeners = new Set<(keyId: string) => void>();
  /** When each API key's use was last written (ms), by this node or, as a record read said, another; dropped once older than the interval, when it no longer holds a write back. */
  readonly #usesWritten = new Map<string, number>();
  /** The writes of uses still under way, for `stop` to wait for. */
  readonly #writing = new Set<Promise<void>>();
  readonly #logger: Logger;
  readonly #lastUseInterval: number;
  readonly #now: () => number;
  #sweptAt = 0;
  /** Revocations up to about this time (ms) have reached this node's listeners. */
  #caughtUpAt = 0;
  #stopReconnect?: () => void;

  constructor(store: Store, broker: Broker, options: ApiKeysOptions = {}) {
    this.#store = store;
    this.#broker = broker;
    this.#logger = options.logger ?? silentLogger;
    this.#lastUseInterval = options.lastUseInterval ?? defaultLastUseInterval;
    this.#now = options.now ?? Date.now;
  }

  /** Listens for revocations made on any node, and after the broker was away, finds those it missed in the store. */
  async start(): Promise<void> {
    this.#caughtUpAt = this.#now();
    await this.#broker.subscribe(revokedChannel, (keyId) => this.#revoked(keyId));
    this.#stopReconnect = this.#broker.onReconnect?.(() => void this.#catchUp());
  }

  /** Stops listening for reconnects; resolves once the writes of keys' uses under way are done, before the store may close. */
  async stop(): Promise<void> {
    this.#stopReconnect?.();
    await Promise.all(this.#writing);
  }

  #revoked(keyId: string): void {
    this.#cache.delete(keyId);
    for (const listener of this.#revokeListeners) listener(keyId);
  }

  /** Tells the listeners of the keys revoked since the last catch-up (or the start): their rings may have been lost. */
  async #catchUp(): Promise<void> {
    const since = this.#caughtUpAt - clockSkewMargin;
    const now = this.#now();
    try {
      const keys = await this.#store.keys.list();
      this.#cache.clear();
      for (const key of keys) if (key.revokedAt !== undefined && Date.parse(key.revokedAt) >= since) this.#revoked(key.id);
      this.#caughtUpAt = now;
    } catch {
      // The next reconnect tries again from the same point; meanwhile the key cache expires within 5 s.
    }
  }

  /** Calls `listener` with the id of each revoked key; returns a function that stops it. */
  onRevoked(listener: (keyId: string) => void): () => void {
    this.#revokeListeners.add(listener);
    return () => this.#revokeListeners.delete(listener);
  }

  /**
   * Makes sure an admin key exists: the configured one (any string), or a new one when the store
   * has no usable admin key. Returns a newly generated key, which is shown only this once.
   */
  async bootstrap(configuredAdminKey: string | undefined): Promise<string | undefined> {
    if (configuredAdminKey) {
      await this.#store.keys.put({
        id: envAdminKeyId,
        role: 'admin',
        hash: sha256(configuredAdminKey).toString('hex'),
        createdAt: new Date(this.#now()).toISOString(),
      });
      this.#cache.delete(envAdminKeyId);
      return undefined;
    }
    const keys = await this.#store.keys.list();
    if (keys.some((key) => key.role === 'admin' && !key.revokedAt)) return undefined;
    return (await this.create('admin')).key;
  }

  /** A new API key, acting as `consumer` for a consumer key. */
  create(role: Role, consumer?: string, details: NewKeyDetails = {}): Promise<{ record: ApiKeyRecord; key: string }> {
    return this.#issue('hk', { role, ...(consumer !== undefined ? { consumer } : {}), ...details });
  }

  /** A stream token acting for `issuer` (an API key's principal), limited as asked. */
  async createStreamToken(issuer: Principal, request: StreamTokenRequest): Promise<{ record: ApiKeyRecord; key: string }> {
    const now = this.#now();
    await this.#store.keys.deleteExpired(new Date(now - 3_600_000).toISOString());
    const consumer = request.consumer ?? issuer.consumer;
    return this.#issue('hs', {
      role: 'consumer',
      ...(consumer !== undefined ? { consumer } : {}),
      ...(request.types !== undefined ? { types: request.types } : {}),
      parentId: issuer.keyId,
      expiresAt: new Date(now + (request.ttl ?? 300) * 1000).toISOString(),
    });
  }

  /** A portal token acting as `consumer` for `ttl` seconds, issued by the admin key `issuer`; revoking that key ends it. */
  async createPortalToken(issuer: Principal, consumer: string, ttl: number): Promise<{ record: ApiKeyRecord; key: string }> {
    const now = this.#now();
    await this.#store.keys.deleteExpired(new Date(now - 3_600_000).toISOString());
    return this.#issue('hp', { role: 'consumer', consumer, parentId: issuer.keyId, expiresAt: new Date(now + ttl * 1000).toISOString() });
  }

  async #issue(kind: KeyKind, fields: Omit<ApiKeyRecord, 'id' | 'hash' | 'createdAt'>) {
    const idPart = randomBytes(10).toString('hex');
    const key = `${kind}_${idPart}_${randomBytes(32).toString('hex')}`;
    const record: ApiKeyRecord = {
      id: `${idPrefix[kind]}_${idPart}`,
      ...fields,
      hash: sha256(key).toString('hex'),
      createdAt: new Date(this.#now()).toISOString(),
    };
    await this.#store.keys.put(record);
    return { record, key };
  }

  async revoke(id: string): Promise<boolean> {
    this.#cache.delete(id);
    const revoked = await this.#store.keys.revoke(id);
    if (revoked) await this.#broker.publish(revokedChannel, id).catch(() => {});
    return revoked;
  }

  /** The stored record whose hash is the key's: the one its id names, else the configured admin key, which may have any shape. */
  async #recordOf(key: string): Promise<ApiKeyRecord | undefined> {
    const parsed = keyFormat.exec(key);
    const hash = sha256(key);
    const ids = parsed ? [`${idPrefix[parsed[1] as KeyKind]}_${parsed[2]}`, envAdminKeyId] : [envAdminKeyId];
    for (const id of ids) {
      const record = await this.#lookup(id);
      if (record && timingSafeEqual(hash, Buffer.from(record.hash, 'hex'))) return record;
    }
    return undefined;
  }

  /** The principal of an API key, stream token or portal token; throws UnauthorizedError for anything else. */
  async authenticate(key: string): Promise<Principal> {
    const record = await this.#recordOf(key);
    if (!record) throw new UnauthorizedError('The API key is not valid');
    const credential = credentialOf(record.id);
    if (record.revokedAt) throw new UnauthorizedError(`The ${credentialName[credential]} was revoked`, 'revoked');
    if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= this.#now()) {
      throw new UnauthorizedError(`The ${credentialName[credential]} has expired`, 'token-expired');
    }
    if (record.parentId !== undefined) {
      const parent = await this.#lookup(record.parentId);
      if (!parent || parent.revokedAt) throw new UnauthorizedError(`The key that issued this ${credentialName[credential]} was revoked`, 'revoked');
    }
    if (credential === 'api-key') this.#used(record);
    return {
      keyId: record.id,
      // Tokens stored by earlier versions may say `admin`; a token never acts as one.
      role: credential === 'api-key' ? record.role : 'consumer',
      ...(credential !== 'api-key' ? { credential } : {}),
      ...(record.consumer !== undefined ? { consumer: record.consumer } : {}),
      ...(record.types !== undefined ? { types: record.types } : {}),
      ...(record.expiresAt !== undefined ? { expiresAt: record.expiresAt } : {}),
      ...(record.parentId !== undefined ? { parentKeyId: record.parentId } : {}),
    };
  }

  /** How many keys and stream tokens this node holds in its cache, for `/metrics`. */
  cachedCredentials(): number {
    this.#sweep(this.#now());
    return this.#cache.size;
  }

  /**
   * Writes that the API key authenticated a request, in the background, unless its use was written less than
   * `lastUseInterval` ago, by this node or (as the record read says) another. A failed write is a warning.
   */
  #used(record: ApiKeyRecord): void {
    const now = this.#now();
    const known = this.#usesWritten.get(record.id);
    if (known !== undefined && now - known < this.#lastUseInterval) return;
    const storedAt = record.lastUsedAt === undefined ? Number.NEGATIVE_INFINITY : Date.parse(record.lastUsedAt);
    if (now - storedAt < this.#lastUseInterval) return void this.#usesWritten.set(record.id, storedAt);
    this.#usesWritten.set(record.id, now);
    const writing = this.#store.keys
      .markUsed(record.id, new Date(now).toISOString())
      .catch((error: unknown) => this.#logger.warn({ err: error, keyId: record.id }, 'could not record when the key was last used; the request went on'))
      .finally(() => this.#writing.delete(writing));
    this.#writing.add(writing);
  }

  /** Drops, at most once a second, what the cache may no longer answer with (stale records and expired tokens), and the uses that no longer hold a write back. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < sweepMilliseconds) return;
    this.#sweptAt = now;
    for (const [id, { record, at }] of this.#cache) {
      if (now - at >= cacheMilliseconds || (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now)) this.#cache.delete(id);
    }
    for (const [id, at] of this.#usesWritten) if (now - at >= this.#lastUseInterval) this.#usesWritten.delete(id);
  }

  async #lookup(id: string): Promise<ApiKeyRecord | undefined> {
    const now = this.#now();
    this.#sweep(now);
    const cached = this.#cache.get(id);
    if (cached && now - cached.at < cacheMilliseconds) return cached.record;
    const record = await this.#store.keys.get(id);
    if (record) this.#cache.set(id, { record, at: this.#now() });
    else this.#cache.delete(id);
    return record;
  }
}
