import { memoryTransport, metricValue, startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp([memoryTransport()]);
});
afterAll(() => app.close());

/** The authentication cache's size, as /metrics shows it. */
async function cachedCredentials(): Promise<number> {
  const entries = await metricValue(app, 'herald_key_cache_entries');
  if (entries === undefined) throw new Error('/metrics has no herald_key_cache_entries');
  return entries;
}

describe('the key cache (issue 13)', () => {
  it('does not keep expired stream tokens', async () => {
    const issuer = await app.herald.keys.authenticate(app.adminKey);
    // Short-lived tokens, as a busy page mints them for its visitors: 10 s, which 200 requests outlasted at 5 s on a loaded machine.
    const tokens = await Promise.all(Array.from({ length: 200 }, () => app.herald.keys.createStreamToken(issuer, { ttl: 10 })));
    const answers = await Promise.all(tokens.map(({ key }) => app.api('GET', '/v1/event-types', undefined, key)));
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(await cachedCredentials()).toBeGreaterThanOrEqual(200);

    await waitFor(async () => Date.parse(tokens.at(-1)?.record.expiresAt as string) < Date.now(), 'the tokens to expire');
    expect((await app.api('GET', '/v1/event-types', undefined, tokens[0]?.key)).status).toBe(401);
    // Only the admin key, used just now, is left (with no more than what the last second touched).
    await waitFor(async () => (await cachedCredentials()) <= 2, 'the expired tokens to leave the cache', 5_000);
  });
});
