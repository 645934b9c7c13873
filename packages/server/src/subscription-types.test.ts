import { describe, expect, it, onTestFinished } from 'vitest';
import { memoryTransport } from '../../testkit/src/memory-transport.js';
import { startTestApp } from '../../testkit/src/test-app.js';

/** A Herald with testkit's event types (order.created, order.shipped, order.line.added, invoice.paid, user.signed_up). */
async function start() {
  const app = await startTestApp([memoryTransport()]);
  onTestFinished(() => app.close());
  return app;
}

const unknownTypes = (...patterns: [pattern: string, index: number][]) => ({
  type: 'urn:herald:problem:unknown-event-type',
  status: 422,
  errors: patterns.map(([pattern, index]) => ({ path: ['types', index], message: `${pattern} matches no event type in the catalog` })),
});

describe("a durable subscription's types", () => {
  it('that match no event type in the catalog (a typo) are refused with 422 unknown-event-type, and nothing is stored', async () => {
    const app = await start();
    const key = await app.consumerKey('acme');
    const created = await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['order.created', 'ordr.*', 'invoices.paid'] }, key);
    expect(created).toMatchObject({ status: 422, body: unknownTypes(['ordr.*', 1], ['invoices.paid', 2]) });
    expect((await app.api('GET', '/v1/subscriptions', undefined, key)).body.data).toEqual([]);

    const made = await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['order.*', '*.paid'] }, key);
    expect(made.status).toBe(201);
  });

  it('are checked the same way by a PATCH, which changes nothing when it refuses them', async () => {
    const app = await start();
    const key = await app.consumerKey('acme');
    const { body: subscription } = await app.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['order.*'] }, key);
    const path = `/v1/subscriptions/${subscription.id}`;

    const refused = await app.api('PATCH', path, { types: ['order.*', 'user.singed_up'], status: 'paused' }, key);
    expect(refused).toMatchObject({ status: 422, body: unknownTypes(['user.singed_up', 1]) });
    expect((await app.api('GET', path, undefined, key)).body).toEqual(subscription);

    const retyped = await app.api('PATCH', path, { types: ['user.signed_up'] }, key);
    expect(retyped).toMatchObject({ status: 200, body: { types: ['user.signed_up'] } });
  });
});
