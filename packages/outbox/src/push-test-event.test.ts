import { memoryTransport, startTestApp, type TestApp } from '../../testkit/src/index.js';
import { describe, expect, it, onTestFinished } from 'vitest';
import { jsonlReceiver, jsonlTransport, quickDelivery } from './jsonl-transport.test-support.js';
import { sqlOutbox } from './sql-outbox.js';

async function app(source?: string): Promise<TestApp> {
  const started = await startTestApp([jsonlTransport(quickDelivery), memoryTransport()], source !== undefined ? { source } : {});
  onTestFinished(() => started.close());
  return started;
}

describe('POST /v1/subscriptions/:id/test on a push transport that is not HTTP', () => {
  it("sends one test envelope through the transport's send, stores nothing, and reports a failing destination", async () => {
    const server = await app();
    const receiver = await jsonlReceiver(server, { consumer: 'acme', types: ['order.*'] });
    onTestFinished(() => receiver.close());
    const key = await server.consumerKey('acme');
    const id = receiver.subscriptionId;

    const sent = await server.api('POST', `/v1/subscriptions/${id}/test`, { type: 'order.shipped', data: { n: 3 } }, key);
    expect(sent).toMatchObject({ status: 200, body: { attempt: 1, status: 'succeeded', responseStatus: null, error: null } });
    expect(receiver.events).toEqual([sent.body.event]);
    expect(sent.body.event).toMatchObject({ seq: 0, type: 'order.shipped', data: { n: 3 }, id: expect.stringMatching(/^evt_test_/) });

    await receiver.fail?.(true);
    const failed = await server.api('POST', `/v1/subscriptions/${id}/test`, {}, key);
    expect(failed).toMatchObject({ status: 200, body: { status: 'failed', error: expect.stringMatching(/ENOENT/) } });
    await receiver.fail?.(false);
    expect(receiver.events).toHaveLength(1);

    const outbox = await sqlOutbox(server.herald.store);
    expect(await outbox.list(id)).toEqual([]);
    expect(server.herald.bus.latest).toBe(0);

    // A subscription of a transport that is not a push transport has no such route.
    const { body: memory } = await server.api('POST', '/v1/subscriptions', { transport: 'memory', types: ['order.*'] }, key);
    expect(await server.api('POST', `/v1/subscriptions/${memory.id}/test`, {}, key)).toMatchObject({ status: 404 });
  });

  it("carries the server's source, as the events it publishes do", async () => {
    const server = await app('https://shop.example/events');
    const receiver = await jsonlReceiver(server, { consumer: 'acme', types: ['order.*'] });
    onTestFinished(() => receiver.close());
    const sent = await server.api('POST', `/v1/subscriptions/${receiver.subscriptionId}/test`, {}, await server.consumerKey('acme'));
    expect(sent.body.event.source).toBe('https://shop.example/events');
    expect(receiver.events[0]?.source).toBe('https://shop.example/events');
  });
});
