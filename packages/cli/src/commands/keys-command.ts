import { HeraldApi, type ServerOptions } from '../herald-api.js';
import { terminal } from '../terminal-output.js';

/** `herald keys create`'s flags. */
export interface KeyCreateFlags extends ServerOptions {
  role: 'admin' | 'consumer';
  consumer?: string;
}

/** `herald keys create`: `POST /v1/keys`; prints `{id, key, ...}` (the key is shown this once). */
export async function createKey(flags: KeyCreateFlags): Promise<void> {
  terminal.printJson(await new HeraldApi(flags).post('/v1/keys', { role: flags.role, ...(flags.consumer !== undefined ? { consumer: flags.consumer } : {}) }));
}

/** `herald keys list`: `GET /v1/keys`. */
export async function listKeys(flags: ServerOptions): Promise<void> {
  terminal.printJson(await new HeraldApi(flags).get('/v1/keys'));
}

/** `herald keys revoke <id>`: `DELETE /v1/keys/:id`. */
export async function revokeKey(id: string, flags: ServerOptions): Promise<void> {
  await new HeraldApi(flags).delete(`/v1/keys/${encodeURIComponent(id)}`);
  terminal.note(`Revoked ${id}`);
}
