import { publishNumbered, startTestApp, type TestApp, testEventTypes, waitFor } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { subscribeWebhook } from './subscribe-webhook.test-support.js';
import { startReceiver } from './test-receiver.test-support.js';
import { webhook } from './webhook-transport.js';

async function app(): Promise<TestApp> {
  const started = await startTestApp([webhook({ pollInterval: 50 })], { env: { HERALD_ALLOW_PRIVATE: '1' } });
  onTestFinished(() => started.close());
  return started;
}

describe('the API documents', () => {
  it('/asyncapi.json describes webhooks: a POST to each endpoint, with the content type and Standard Webhooks headers a delivery carries', async () => {
    const server = await app();
    const inbox = await startReceiver();
    await subscribeWebhook(server, { url: inbox.url });
    await publishNumbered(server, 1);
    await waitFor(() => inbox.requests.length === 1, 'the delivery');

    const document = (await server.api('GET', '/asyncapi.json')).body;
    expect(document.servers.webhook).toMatchObject({ host: '{endpoint}', protocol: 'https', variables: { endpoint: { description: expect.any(String) } } });
    const channel = document.channels.webhook;
    expect(channel).toMatchObject({ address: null, title: 'Webhooks (Standard Webhooks)', servers: [{ $ref: '#/servers/webhook' }] });
    expect(document.operations['webhook.send']).toMatchObject({ action: 'send', bindings: { http: { method: 'POST' } } });
    const messages = Object.keys(channel.messages).map((messageId) => document.components.messages[messageId]);
    expect(messages.map((message) => message.name).sort()).toEqual(testEventTypes.map((type) => type.name).sort());

    const [request] = inbox.requests;
    const described = messages.find((message) => message.name === 'order.created');
    expect(request?.headers['content-type']).toBe(described.contentType);
    expect(Object.keys(request?.headers ?? {})).toEqual(expect.arrayContaining(Object.keys(described.headers.properties)));
  });

  it('/openapi.json names the fields of a webhook subscription’s config, `url` required, and those Herald manages as read-only', async () => {
    const document = (await (await app()).api('GET', '/openapi.json')).body;
    const body = document.paths['/v1/subscriptions'].post.requestBody.content['application/json'].schema;
    expect(body.oneOf).toEqual([
      { title: 'webhook', properties: { transport: { const: 'webhook' }, config: { $ref: '#/components/schemas/SubscriptionConfig.webhook' } }, required: ['config'] },
    ]);
    const config = document.components.schemas['SubscriptionConfig.webhook'];
    expect(config.required).toEqual(['url']);
    expect(config.properties.url).toMatchObject({ type: 'string', description: expect.stringMatching(/POSTed/) });
    expect(config.properties.secret.description).toMatch(/whsec_/);
    const managed = Object.keys(config.properties).filter((name) => config.properties[name].readOnly === true);
    expect(managed.sort()).toEqual(['previousSecrets', 'unverified', 'verifiedAt', 'verifiedUrl']);
  });
});
