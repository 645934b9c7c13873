import { defineEventType, type Transport } from '@herald/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import { z as z3 } from 'zod/v3';
import { createHerald } from './create-herald.js';

const orderCreated = defineEventType('order.created', z.object({ orderId: z.string() }), { description: 'An order was placed' });
const invoicePaid = defineEventType('invoice.paid', z.object({ invoiceId: z.string() }));

/** A transport that starts and stops and delivers nothing: what the documents say of it is all it is here for. */
function transport(name: string, parts: Partial<Transport> = {}): Transport {
  return { name, async start() {}, async stop() {}, ...parts };
}

/** A contributor's transport to an MQTT broker of the provider's, which describes its channel. */
const mqtt = transport('mqtt', {
  kind: 'push',
  configSchema: z.strictObject({ topic: z.string().min(1).describe('Where under the consumer’s prefix events are published'), qos: z.union([z.literal(0), z.literal(1)]).optional() }),
  channel: {
    title: 'MQTT',
    description: 'Each event is published with QoS 1 to `herald/<consumer>/<topic>`.',
    server: { protocol: 'mqtt', protocolVersion: '5', host: 'broker.example.com:8883', description: 'The provider’s broker' },
    address: 'herald/{consumer}/{topic}',
    variables: { consumer: 'The subscription’s consumer', topic: 'The subscription’s `config.topic`' },
    events: { headers: z.object({ 'herald-seq': z.string() }), contentType: 'application/cloudevents+json' },
    frames: { client: { hello: z.object({ name: z.string() }).describe('A client says hello') }, server: { bye: z.object({ reason: z.string() }) } },
    bindings: { operation: { mqtt: { qos: 1, bindingVersion: '0.2.0' } } },
  },
});

/** Schemas that cannot be exported as JSON Schema: a zod 3 schema (zod 4's `toJSONSchema` throws on it), and `z.custom()` (it exports as nothing). */
const unexportable = [
  transport('legacy', {
    configSchema: z3.strictObject({ endpoint: z3.string() }) as unknown as z.ZodType<Record<string, unknown>>,
    channel: { events: { headers: z3.object({ id: z3.string() }) as unknown as z.ZodType }, frames: { server: { odd: z3.string() as unknown as z.ZodType } } },
  }),
  transport('custom', { configSchema: z.custom<Record<string, unknown>>(() => true) }),
];

async function documents(transports: Transport[]) {
  const herald = createHerald({ database: ':memory:', logLevel: 'silent', env: {}, transports, eventTypes: [orderCreated, invoicePaid] });
  onTestFinished(() => herald.close());
  const { port } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    expect(response.status, path).toBe(200);
    return (await response.json()) as any;
  };
  return { port, asyncApi: await get('/asyncapi.json'), openApi: await get('/openapi.json') };
}

describe('/asyncapi.json', () => {
  it('describes a contributor’s transport as its channel says: server, address and its parameters, events with headers and content type, frames, bindings', async () => {
    const { asyncApi } = await documents([mqtt]);
    expect(asyncApi.servers.mqtt).toEqual({ host: 'broker.example.com:8883', protocol: 'mqtt', protocolVersion: '5', description: 'The provider’s broker' });
    const channel = asyncApi.channels.mqtt;
    expect(channel).toMatchObject({
      address: 'herald/{consumer}/{topic}',
      title: 'MQTT',
      description: 'Each event is published with QoS 1 to `herald/<consumer>/<topic>`.',
      servers: [{ $ref: '#/servers/mqtt' }],
      parameters: { consumer: { description: 'The subscription’s consumer' }, topic: { description: 'The subscription’s `config.topic`' } },
    });
    expect(Object.keys(channel.messages).sort()).toEqual(['mqtt.client.hello', 'mqtt.event.invoice.paid', 'mqtt.event.order.created', 'mqtt.server.bye']);

    const created = asyncApi.components.messages['mqtt.event.order.created'];
    expect(created).toMatchObject({ name: 'order.created', summary: 'An order was placed', contentType: 'application/cloudevents+json' });
    expect(created.headers).toMatchObject({ type: 'object', properties: { 'herald-seq': { type: 'string' } }, required: ['herald-seq'] });
    expect(created.payload).toEqual({ $ref: '#/components/schemas/Event.order.created' });
    expect(asyncApi.components.schemas['Event.order.created'].properties.data.properties.orderId.type).toBe('string');
    expect(asyncApi.components.messages['mqtt.client.hello']).toMatchObject({ name: 'hello', summary: 'A client says hello', payload: { properties: { name: { type: 'string' } } } });

    expect(asyncApi.operations['mqtt.send']).toEqual({
      action: 'send',
      title: 'Sent by Herald',
      channel: { $ref: '#/channels/mqtt' },
      messages: ['mqtt.event.invoice.paid', 'mqtt.event.order.created', 'mqtt.server.bye'].map((id) => ({ $ref: `#/channels/mqtt/messages/${id}` })),
      bindings: { mqtt: { qos: 1, bindingVersion: '0.2.0' } },
    });
    expect(asyncApi.operations['mqtt.receive']).toMatchObject({ action: 'receive', messages: [{ $ref: '#/channels/mqtt/messages/mqtt.client.hello' }] });
  });

  it('gives a transport that describes nothing a channel of the catalog’s events, titled with its name, on no server of its own', async () => {
    const { asyncApi } = await documents([transport('bare'), mqtt]);
    expect(asyncApi.channels.bare).toEqual({
      address: null,
      title: 'bare',
      messages: {
        'bare.event.order.created': { $ref: '#/components/messages/bare.event.order.created' },
        'bare.event.invoice.paid': { $ref: '#/components/messages/bare.event.invoice.paid' },
      },
    });
    expect(asyncApi.servers.bare).toBeUndefined();
    expect(asyncApi.operations['bare.send'].messages).toHaveLength(2);
    expect(asyncApi.operations['bare.receive']).toBeUndefined();
  });

  it('puts a server without a host of its own on the Herald server, at the host it was asked at', async () => {
    const { asyncApi, port } = await documents([transport('lines', { channel: { server: { protocol: 'http' }, address: '/v1/lines' } })]);
    expect(asyncApi.servers.lines).toEqual({ host: `127.0.0.1:${port}`, protocol: 'http' });
    expect(asyncApi.channels.lines.address).toBe('/v1/lines');
  });

  it('stays whole when a transport’s schemas cannot be exported: a free headers object, a payload of anything', async () => {
    const { asyncApi } = await documents(unexportable);
    expect(asyncApi.components.messages['legacy.event.order.created'].headers).toEqual({ type: 'object' });
    expect(asyncApi.components.messages['legacy.server.odd'].payload).toEqual({});
    expect(Object.keys(asyncApi.channels).sort()).toEqual(['custom', 'legacy']);
  });
});

describe('/openapi.json', () => {
  const createBody = (document: any) => document.paths['/v1/subscriptions'].post.requestBody.content['application/json'].schema;
  const changeBody = (document: any) => document.paths['/v1/subscriptions/{id}'].patch.requestBody.content['application/json'].schema;

  it('describes the config of a subscription to each mounted transport: one form per transport, with the input its configSchema takes', async () => {
    const { openApi } = await documents([mqtt, transport('bare')]);
    const body = createBody(openApi);
    // The body itself, as before: the transport-specific part is in `oneOf`.
    expect(body.required).toEqual(expect.arrayContaining(['transport', 'types']));
    expect(body.additionalProperties).toBe(false);
    expect(body.oneOf).toEqual([
      { title: 'mqtt', properties: { transport: { const: 'mqtt' }, config: { $ref: '#/components/schemas/SubscriptionConfig.mqtt' } }, required: ['config'] },
      { title: 'bare', properties: { transport: { const: 'bare' }, config: { $ref: '#/components/schemas/SubscriptionConfig.bare' } } },
    ]);
    const config = openApi.components.schemas['SubscriptionConfig.mqtt'];
    expect(config).toMatchObject({
      type: 'object',
      additionalProperties: false,
      required: ['topic'],
      properties: { topic: { type: 'string', minLength: 1, description: 'Where under the consumer’s prefix events are published' } },
    });
    expect(Object.keys(config.properties)).toEqual(['topic', 'qos']);
    // No configSchema: the config must be empty, as the server validates it.
    expect(openApi.components.schemas['SubscriptionConfig.bare']).toEqual({ type: 'object', properties: {}, additionalProperties: false });

    // A change names only the fields it changes, merged into the stored config.
    const changed = changeBody(openApi).properties.config.anyOf;
    expect(changed.map((form: any) => form.title)).toEqual(['mqtt', 'bare']);
    expect(changed[0].properties.topic.type).toBe('string');
    expect(changed[0].required).toBeUndefined();
  });

  it('describes a config whose schema cannot be exported as a free object, and the rest of the document as ever', async () => {
    const { openApi } = await documents([...unexportable, mqtt]);
    for (const name of ['legacy', 'custom']) {
      expect(openApi.components.schemas[`SubscriptionConfig.${name}`]).toEqual({
        type: 'object',
        description: `The config of a \`${name}\` subscription (its schema cannot be shown as JSON Schema)`,
      });
    }
    expect(openApi.components.schemas['SubscriptionConfig.mqtt'].required).toEqual(['topic']);
    expect(createBody(openApi).oneOf.map((form: any) => form.title)).toEqual(['legacy', 'custom', 'mqtt']);
  });
});
