import { describe, expect, it, onTestFinished } from 'vitest';
import { startTestApp } from '../../testkit/src/test-app.js';

describe('DELETE /v1/keys/:id', () => {
  it('revokes a key, answers a key revoked before as it did the first time (204, it stays revoked), and an unknown id 404', async () => {
    const app = await startTestApp([]);
    onTestFinished(() => app.close());
    const { body: made } = await app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'acme' });

    expect(await app.api('DELETE', `/v1/keys/${made.id}`)).toEqual({ status: 204, body: undefined });
    const listed = async () => (await app.api('GET', '/v1/keys')).body.data.find((key: { id: string }) => key.id === made.id);
    const revoked = await listed();
    expect(revoked.revokedAt).toEqual(expect.any(String));

    expect(await app.api('DELETE', `/v1/keys/${made.id}`)).toEqual({ status: 204, body: undefined });
    expect(await listed()).toEqual(revoked);
    expect((await app.api('GET', '/v1/event-types', undefined, made.key)).status).toBe(401);

    expect(await app.api('DELETE', '/v1/keys/hk_unknown')).toMatchObject({ status: 404, body: { type: 'urn:herald:problem:not-found' } });
  });
});
