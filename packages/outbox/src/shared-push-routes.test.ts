import { startTestApp, type TestApp, waitFor } from '../../testkit/src/index.js';
import { memoryTransport } from '../../testkit/src/index.js';
import { describe, expect, it, onTestFinished } from 'vitest';
import { jsonlReceiver, jsonlTransport, quickDelivery } from './jsonl-transport.test-support.js';

async function app(): Promise<TestApp> {
  const started = await startTestApp([jsonlTransport(quickDelivery, 'jsonl-a'), jsonlTransport(quickDelivery, 'jsonl-b'), memoryTransport()]);
  onTestFinished(() => started.close());
  return started;
}

describe('several push transports on one server', () => {
  it('share the attempts, retry and replay routes: each answers for the subscriptions of its own transport', async () => {
    const server = await app();
    const a = await jsonlReceiver(server, { consumer: 'acme', types: ['order.*'] }, 'jsonl-a');
    const b = await jsonlReceiver(server, { consumer: 'acme', types: ['order.*'] }, 'jsonl-b');
    onTestFinished(() => a.close());
    onTestFinished(() => b.close());
    const key = await server.consumerKey('acme');
    const { body: memory } = await server.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['order.*'] }, key);
    const published = [];
    for (let n = 0; n < 3; n++) published.push((await server.herald.publish({ type: 'order.created', data: { n } })).event);
    const deliveries = async (id: string) => (await server.api('GET', `/v1/subscriptions/${id}/deliveries`, undefined, key)).body.data as { id: string; eventId: string; status: string }[];
    for (const receiver of [a, b]) {
      await waitFor(async () => (await deliveries(receiver.subscriptionId)).filter((d) => d.status === 'delivered').length === 3, `${receiver.subscriptionId}'s deliveries`);
      expect(receiver.events.map((event) => event.id)).toEqual(published.map((event) => event.id));
    }

    // A retry of one of b's deliveries is sent by b, to b's destination only.
    const [latest] = await deliveries(b.subscriptionId);
    const retried = await server.api('POST', `/v1/deliveries/${latest?.id}/retry`, undefined, key);
    expect(retried).toMatchObject({ status: 202, body: { id: latest?.id, status: 'pending' } });
    await waitFor(() => b.events.length === 4, "b's retried delivery");
    expect(b.events.at(-1)?.id).toBe(latest?.eventId);
    // The attempt is recorded just after the destination has the event.
    const attempts = async () => (await server.api('GET', `/v1/deliveries/${latest?.id}`, undefined, key)).body.attempts as unknown[];
    await waitFor(async () => (await attempts()).length >= 2, "the retry's attempt");
    expect(await attempts()).toHaveLength(2);

    // A replay of a goes to a's destination only.
    const replay = await server.api('POST', `/v1/subscriptions/${a.subscriptionId}/replay`, { after: 0 }, key);
    expect(replay.status).toBe(202);
    await waitFor(async () => (await server.api('GET', `/v1/subscriptions/${a.subscriptionId}/replay`, undefined, key)).body.status === 'completed', "a's replay");
    await waitFor(() => a.events.length === 6, "a's replayed deliveries");
    expect(b.events).toHaveLength(4);

    // A subscription of a transport that is not a push transport has none of these routes.
    for (const [method, path] of [
      ['GET', `/v1/subscriptions/${memory.id}/deliveries`],
      ['POST', `/v1/subscriptions/${memory.id}/replay`],
      ['GET', `/v1/subscriptions/${memory.id}/replay`],
    ] as const) {
      const answer = await server.api(method, path, method === 'POST' ? { after: 0 } : undefined, key);
      expect({ path, status: answer.status, type: answer.body.type }).toEqual({ path, status: 404, type: 'urn:herald:problem:not-found' });
      // It exists: the answer says what it is, and what these routes are for.
      expect(answer.body.detail).toBe(
        `Subscription ${memory.id} is of the memory transport, which sends no deliveries: tests, deliveries and replays are for push transports (jsonl-a, jsonl-b)`,
      );
    }
    const unknown = await server.api('GET', '/v1/subscriptions/sub_unknown/deliveries', undefined, key);
    expect(unknown.body.detail).toBe('Subscription sub_unknown was not found');
    // The routes are in the API document once.
    const { body: openapi } = await server.api('GET', '/openapi.json');
    expect(Object.keys(openapi.paths).filter((path) => path.startsWith('/v1/deliveries'))).toEqual(['/v1/deliveries/{id}', '/v1/deliveries/{id}/retry']);
  });
});
