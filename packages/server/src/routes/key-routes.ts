import { type ApiKeyRecord, consumerId, defineRoute, NotFoundError, type RouteDefinition } from '@herald/core';
import { z } from 'zod';
import { apiKeySchema, createdKeySchema, keyName, listOf } from '../api-schemas.js';
import type { ServerContext } from '../server-context.js';

const createKeyBody = z
  .strictObject({ role: z.enum(['admin', 'consumer']), consumer: consumerId.optional(), name: keyName.optional() })
  .refine((body) => (body.role === 'consumer') === (body.consumer !== undefined), {
    message: 'a consumer key needs `consumer`; an admin key takes none',
    path: ['consumer'],
  });

function publicKey({ hash: _hash, ...key }: ApiKeyRecord) {
  return key;
}

export function keyRoutes({ keys, store }: ServerContext): RouteDefinition[] {
  return [
    defineRoute({
      method: 'POST',
      path: '/v1/keys',
      role: 'admin',
      body: createKeyBody,
      summary: 'Create an API key (shown only in this response)',
      response: { status: 201, body: createdKeySchema },
      async handle({ body, principal }) {
        const details = { ...(body.name !== undefined ? { name: body.name } : {}), createdBy: principal.keyId };
        const { record, key } = await keys.create(body.role, body.consumer, details);
        return { status: 201, body: { ...publicKey(record), key } };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/keys',
      role: 'admin',
      summary: 'List the API keys (never the keys themselves): what each is for, who made it, when it was last used',
      response: { body: listOf(apiKeySchema) },
      async handle() {
        return { body: { data: (await store.keys.list()).filter((key) => key.parentId === undefined).map(publicKey) } };
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/v1/keys/:id',
      role: 'admin',
      summary: 'Revoke an API key and the stream tokens it issued; one revoked before answers 204 again',
      response: { status: 204 },
      async handle({ params }) {
        const id = params.id as string;
        // As DELETE is idempotent, a key revoked before is answered as it was the first time.
        if (!(await keys.revoke(id)) && (await store.keys.get(id))?.revokedAt === undefined) throw new NotFoundError(`Key ${id}`);
        return { status: 204 };
      },
    }),
  ];
}
