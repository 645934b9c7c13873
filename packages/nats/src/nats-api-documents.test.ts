import { publishNumbered, startTestApp, subscribeConsumer, type TestApp, testEventTypes, waitFor } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { natsServer, startStreamConsumer } from './nats-server.test-support.js';
import { nats } from './nats-transport.js';

async function app(): Promise<TestApp> {
  const started = await startTestApp([nats({ pollInterval: 50 })], { env: { HERALD_ALLOW_PRIVATE: '1' } });
  onTestFinished(() => started.close());
  return started;
}

describe('the API documents', () => {
  it('/asyncapi.json describes the NATS channel, and the messages it describes are those a stream gets: headers', async () => {
    const stream = await startStreamConsumer();
    onTestFinished(() => stream.close());
    const server = await app();
    const { id, key } = await subscribeConsumer(server, 'nats', { servers: [natsServer], subject: `${stream.prefix}.{type}` });
    await publishNumbered(server, 1);
    expect((await server.api('POST', `/v1/subscriptions/${id}/test`, {}, key)).status).toBe(200);
    await waitFor(() => stream.received.length === 2, 'an event and a test event');

    const document = (await server.api('GET', '/asyncapi.json')).body;
    expect(document.servers.nats).toMatchObject({ host: '{server}', protocol: 'nats', variables: { server: { description: expect.any(String) } } });
    const channel = document.channels.nats;
    expect(channel).toMatchObject({ address: '{subject}', servers: [{ $ref: '#/servers/nats' }], parameters: { subject: { description: expect.stringMatching(/herald\.\{type\}/) } } });
    expect(channel.description).toMatch(/PubAck/);
    const messages = Object.keys(channel.messages).map((messageId) => document.components.messages[messageId]);
    expect(messages.map((message) => message.name).sort()).toEqual(testEventTypes.map((type) => type.name).sort());

    for (const { event, message } of stream.received) {
      const described = messages.find((candidate) => candidate.name === event.type);
      expect(described.contentType).toBe('application/cloudevents+json');
      const headers = message.headers?.keys() ?? [];
      expect(headers.filter((name) => !(name in described.headers.properties)), 'headers not described').toEqual([]);
      expect(headers).toEqual(expect.arrayContaining(described.headers.required));
    }
    const test = stream.received.find(({ event }) => event.seq === 0);
    expect(test?.message.headers?.get('Herald-Test')).toBe(messages[0].headers.properties['Herald-Test'].const);
  });

  it('/openapi.json names the fields of a NATS subscription’s config', async () => {
    const document = (await (await app()).api('GET', '/openapi.json')).body;
    const body = document.paths['/v1/subscriptions'].post.requestBody.content['application/json'].schema;
    expect(body.oneOf).toEqual([
      { title: 'nats', properties: { transport: { const: 'nats' }, config: { $ref: '#/components/schemas/SubscriptionConfig.nats' } }, required: ['config'] },
    ]);
    const config = document.components.schemas['SubscriptionConfig.nats'];
    expect(Object.keys(config.properties).sort()).toEqual(['ordered', 'rateLimit', 'servers', 'subject']);
    expect(config.required).toEqual(['servers']);
    expect(config.properties.subject.description).toMatch(/\{type\}/);
  });
});
