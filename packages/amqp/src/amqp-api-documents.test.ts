import { publishNumbered, startTestApp, subscribeConsumer, type TestApp, testEventTypes, waitFor } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { brokerUrl, startConsumer } from './amqp-broker.test-support.js';
import { amqp } from './amqp-transport.js';

async function app(): Promise<TestApp> {
  const started = await startTestApp([amqp({ pollInterval: 50 })], { env: { HERALD_ALLOW_PRIVATE: '1' } });
  onTestFinished(() => started.close());
  return started;
}

describe('the API documents', () => {
  it('/asyncapi.json describes the AMQP channel, and the messages it describes are those a queue gets: content type, headers', async () => {
    const queue = await startConsumer();
    onTestFinished(() => queue.close());
    const server = await app();
    const { id, key } = await subscribeConsumer(server, 'amqp', { url: brokerUrl, exchange: queue.exchange });
    await publishNumbered(server, 1);
    expect((await server.api('POST', `/v1/subscriptions/${id}/test`, {}, key)).status).toBe(200);
    await waitFor(() => queue.received.length === 2, 'an event and a test event');

    const document = (await server.api('GET', '/asyncapi.json')).body;
    expect(document.servers.amqp).toMatchObject({ host: '{broker}', protocol: 'amqp', protocolVersion: '0-9-1', variables: { broker: { description: expect.any(String) } } });
    const channel = document.channels.amqp;
    expect(channel).toMatchObject({ address: '{routingKey}', servers: [{ $ref: '#/servers/amqp' }], parameters: { routingKey: { description: expect.stringMatching(/event’s type/) } } });
    expect(channel.bindings.amqp).toMatchObject({ is: 'routingKey' });
    expect(document.operations['amqp.send']).toMatchObject({ action: 'send', bindings: { amqp: { deliveryMode: 2 } } });
    const messages = Object.keys(channel.messages).map((messageId) => document.components.messages[messageId]);
    expect(messages.map((message) => message.name).sort()).toEqual(testEventTypes.map((type) => type.name).sort());

    for (const { event, message } of queue.received) {
      const described = messages.find((candidate) => candidate.name === event.type);
      expect(message.properties.contentType).toBe(described.contentType);
      expect(message.properties.deliveryMode).toBe(2);
      const headers = message.properties.headers ?? {};
      expect(Object.keys(headers).filter((name) => !(name in described.headers.properties)), 'headers not described').toEqual([]);
      expect(Object.keys(headers)).toEqual(expect.arrayContaining(described.headers.required));
    }
    const test = queue.received.find(({ event }) => event.seq === 0);
    expect(test?.message.properties.headers?.['herald-test']).toBe(messages[0].headers.properties['herald-test'].const);
  });

  it('/openapi.json names the fields of an AMQP subscription’s config', async () => {
    const document = (await (await app()).api('GET', '/openapi.json')).body;
    const body = document.paths['/v1/subscriptions'].post.requestBody.content['application/json'].schema;
    expect(body.oneOf).toEqual([
      { title: 'amqp', properties: { transport: { const: 'amqp' }, config: { $ref: '#/components/schemas/SubscriptionConfig.amqp' } }, required: ['config'] },
    ]);
    const config = document.components.schemas['SubscriptionConfig.amqp'];
    expect(Object.keys(config.properties).sort()).toEqual(['exchange', 'mandatory', 'ordered', 'rateLimit', 'routingKey', 'url']);
    expect(config.required).toEqual(['url', 'exchange']);
    expect(config.additionalProperties).toBe(false);
    expect(config.properties.exchange.description).toMatch(/must exist/);
  });
});
