import { HeraldApi, type ServerOptions } from '../herald-api.js';
import { terminal } from '../terminal-output.js';

/** `herald keys create`'s flags. */
export interface KeyCreateFlags extends ServerOptions {
  role: 'admin' | 'consumer';
  consumer?: string;
  /** What the key is for, as a label. */
  name?: string;
}

/** `herald keys create`: `POST /v1/keys`; prints `{id, key, ...}` (the key is shown this once). */
export async function createKey(flags: KeyCreateFlags): Promise<void> {
  const { role, consumer, name } = flags;
  terminal.printJson(
    await new HeraldApi(flags).post('/v1/keys', { role, ...(consumer !== undefined ? { consumer } : {}), ...(name !== undefined ? { name } : {}) }),
  );
}

/** `herald keys list`: `GET /v1/keys`, each key with its `name`, `createdBy` and `lastUsedAt` where it has them. */
export async function listKeys(flags: ServerOptions): Promise<void> {
  terminal.printJson(await new HeraldApi(flags).get('/v1/keys'));
}

/** A key as `GET /v1/keys` lists it (the fields the command reads). */
interface ListedKey {
  id: string;
  revokedAt?: string;
}

/**
 * `herald keys revoke <id>`: `DELETE /v1/keys/:id`. A key revoked already is done, as the revoke would have
 * left it, and exits with 0; the API answers it 404 as an unknown key, so the list of keys tells them apart.
 */
export async function revokeKey(id: string, flags: ServerOptions): Promise<void> {
  const api = new HeraldApi(flags);
  // The server answers a second revoke as the first (DELETE is idempotent): the list says whether it was.
  const listed = await api.get<{ data: ListedKey[] }>('/v1/keys');
  const revokedAt = listed.data.find((key) => key.id === id)?.revokedAt;
  if (revokedAt !== undefined) return terminal.note(`${id} was already revoked (at ${revokedAt})`);
  await api.delete(`/v1/keys/${encodeURIComponent(id)}`);
  terminal.note(`Revoked ${id}`);
}
