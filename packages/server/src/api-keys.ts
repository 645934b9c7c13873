import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { type ApiKeyRecord, type Principal, type Role, type Store, UnauthorizedError } from '@herald/core';

const keyFormat = /^hk_([0-9a-z]{20})_([0-9a-f]{64})$/;
const envAdminKeyId = 'key_admin';
/** How long a looked-up key is trusted before it is read again (revocation on other nodes). */
const cacheMilliseconds = 5_000;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Issues and checks API keys. Keys look like `hk_<id>_<secret>`; only their SHA-256 is stored,
 * and it is compared in constant time.
 */
export class ApiKeys {
  readonly #store: Store;
  readonly #cache = new Map<string, { record: ApiKeyRecord; at: number }>();

  constructor(store: Store) {
    this.#store = store;
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
        createdAt: new Date().toISOString(),
      });
      this.#cache.delete(envAdminKeyId);
      return undefined;
    }
    const keys = await this.#store.keys.list();
    if (keys.some((key) => key.role === 'admin' && !key.revokedAt)) return undefined;
    return (await this.create('admin')).key;
  }

  async create(role: Role, consumer?: string): Promise<{ record: ApiKeyRecord; key: string }> {
    const idPart = randomBytes(10).toString('hex');
    const key = `hk_${idPart}_${randomBytes(32).toString('hex')}`;
    const record: ApiKeyRecord = {
      id: `key_${idPart}`,
      role,
      ...(consumer !== undefined ? { consumer } : {}),
      hash: sha256(key).toString('hex'),
      createdAt: new Date().toISOString(),
    };
    await this.#store.keys.put(record);
    return { record, key };
  }

  async revoke(id: string): Promise<boolean> {
    this.#cache.delete(id);
    return this.#store.keys.revoke(id);
  }

  /** The principal of an API key; throws UnauthorizedError for anything else. */
  async authenticate(key: string): Promise<Principal> {
    const id = `key_${keyFormat.exec(key)?.[1] ?? 'admin'}`;
    const record = await this.#lookup(id);
    if (!record || record.revokedAt || !timingSafeEqual(sha256(key), Buffer.from(record.hash, 'hex'))) {
      throw new UnauthorizedError('The API key is not valid');
    }
    return { keyId: record.id, role: record.role, ...(record.consumer !== undefined ? { consumer: record.consumer } : {}) };
  }

  async #lookup(id: string): Promise<ApiKeyRecord | undefined> {
    const cached = this.#cache.get(id);
    if (cached && Date.now() - cached.at < cacheMilliseconds) return cached.record;
    const record = await this.#store.keys.get(id);
    if (record) this.#cache.set(id, { record, at: Date.now() });
    else this.#cache.delete(id);
    return record;
  }
}
