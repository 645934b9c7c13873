import { Parser } from '@asyncapi/parser';
import { startTestApp, type TestApp, testEventTypes } from '@herald/testkit';
import { sse } from '@herald/sse';
import { webhook } from '@herald/webhook';
import { websocket } from '@herald/websocket';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let app: TestApp;
/** The documents, read before any heavy validation: parsing keeps the event loop (so this in-process server) busy for seconds. */
const documents: { openApiBefore?: any; openApi?: any; asyncApi?: any; catalog?: string[]; docsPage?: Response; docsHtml?: string } = {};

beforeAll(async () => {
  app = await startTestApp([webhook(), websocket(), sse()]);
  documents.openApiBefore = await getJson('/openapi.json');
  const registered = await app.api('POST', '/v1/event-types', {
    name: 'refund.issued',
    schema: { type: 'object', properties: { refundId: { type: 'string' } }, required: ['refundId'] },
  });
  expect(registered.status).toBe(201);
  documents.openApi = await getJson('/openapi.json');
  documents.asyncApi = await getJson('/asyncapi.json');
  documents.catalog = (await app.api('GET', '/v1/event-types')).body.data.map((type: { name: string }) => type.name).sort();
  documents.docsPage = await fetch(`${app.baseUrl}/docs`);
  documents.docsHtml = await documents.docsPage.text();
});
afterAll(() => app?.close());

async function getJson(path: string): Promise<any> {
  const response = await fetch(`${app.baseUrl}${path}`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  return response.json();
}

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** `GET /v1/subscriptions/{id}` for every route express answers, read from its router (not from Herald's own bookkeeping). */
function expressRoutes(stack: Layer[]): string[] {
  return stack.flatMap((layer) => {
    if (layer.route) {
      const path = layer.route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      return Object.keys(layer.route.methods).map((method) => `${method.toUpperCase()} ${path}`);
    }
    return layer.handle?.stack ? expressRoutes(layer.handle.stack) : [];
  });
}

function operations(document: any): string[] {
  return Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
    Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
  );
}

/** The routes of the public contract v1 (docs/architecture.md): all of them must be documented. */
const contract = [
  'POST /v1/keys',
  'GET /v1/event-types',
  'POST /v1/event-types',
  'POST /v1/events',
  'GET /v1/events',
  'POST /v1/subscriptions',
  'GET /v1/subscriptions',
  'GET /v1/subscriptions/{id}',
  'PATCH /v1/subscriptions/{id}',
  'DELETE /v1/subscriptions/{id}',
  'POST /v1/subscriptions/{id}/secret/rotate',
  'GET /v1/subscriptions/{id}/deliveries',
  'POST /v1/subscriptions/{id}/replay',
  'POST /v1/deliveries/{id}/retry',
  'POST /v1/stream-tokens',
  'GET /v1/stream',
  'GET /v1/ws',
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
  'GET /openapi.json',
  'GET /asyncapi.json',
  'GET /docs',
];

describe('/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document by the official schema', async () => {
    const document = documents.openApi;
    expect(document.openapi).toBe('3.1.0');
    const validator = new Validator();
    const result = await validator.validate(document);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('documents every route express answers, the WebSocket upgrade, and the whole public contract', async () => {
    const documented = operations(documents.openApi);
    const answered = expressRoutes((app.herald.app as unknown as { router: { stack: Layer[] } }).router.stack);
    expect(answered.length).toBeGreaterThan(25);
    expect(answered.filter((route) => !documented.includes(route))).toEqual([]);
    expect(contract.filter((route) => !documented.includes(route))).toEqual([]);
  });

  it('describes inputs from the zod schemas: parameters, bodies, auth and problem answers', async () => {
    const document = documents.openApi;
    const list = document.paths['/v1/events'].get;
    expect(list.parameters.map((parameter: { name: string; in: string }) => `${parameter.in}:${parameter.name}`).sort()).toEqual([
      'query:after',
      'query:filter',
      'query:limit',
      'query:types',
    ]);
    expect(list.responses['200'].content['application/json'].schema.properties.data.type).toBe('array');

    const create = document.paths['/v1/subscriptions'].post;
    const body = create.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(expect.arrayContaining(['transport', 'types']));
    expect(body.additionalProperties).toBe(false);
    expect(body.properties.filter.$ref).toBe('#/components/schemas/EventFilter');
    expect(document.components.schemas.EventFilter.additionalProperties).toEqual({ $ref: '#/components/schemas/EventFilterCondition' });
    expect(create.responses['201']).toBeDefined();
    expect(create.responses['422'].content['application/problem+json'].schema).toEqual({ $ref: '#/components/schemas/Problem' });
    expect(Object.keys(create.responses['429'].headers).sort()).toEqual(['RateLimit', 'RateLimit-Policy', 'Retry-After']);

    const stream = document.paths['/v1/stream'].get;
    expect(stream.security).toEqual([{ bearer: [] }, { accessToken: [] }]);
    expect(document.paths['/v1/subscriptions/{id}'].delete.parameters).toEqual([{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]);
    expect(document.paths['/healthz'].get.security).toEqual([]);
  });

  it('names every catalog type in the publish body, with the schema of its data, including types registered over REST', async () => {
    const publishBody = (document: any) => document.paths['/v1/events'].post.requestBody.content['application/json'].schema;
    expect(publishBody(documents.openApiBefore).oneOf.map((variant: any) => variant.properties.type.const)).not.toContain('refund.issued');
    const document = documents.openApi;
    const variants = document.paths['/v1/events'].post.requestBody.content['application/json'].schema.oneOf as any[];
    const names = [...testEventTypes.map((type) => type.name), 'refund.issued'];
    expect(variants.map((variant) => variant.properties.type.const).sort()).toEqual([...names].sort());
    const refund = variants.find((variant) => variant.properties.type.const === 'refund.issued');
    expect(document.components.schemas[refund.properties.data.$ref.split('/').at(-1)].required).toEqual(['refundId']);
  });
});

describe('/asyncapi.json', () => {
  it('passes the official AsyncAPI parser with no error and no warning', async () => {
    const document = documents.asyncApi;
    expect(document.asyncapi).toBe('3.0.0');
    const { document: parsed, diagnostics } = await new Parser().parse(document);
    // Severity 0 is an error, 1 a warning; 2 and 3 are hints (e.g. that a newer AsyncAPI version exists).
    expect(diagnostics.filter((diagnostic) => diagnostic.severity <= 1).map((diagnostic) => `${diagnostic.code}: ${diagnostic.message}`)).toEqual([]);
    expect(parsed).toBeDefined();
  });

  it('has the WebSocket, SSE and webhook channels, with one message per catalog type on SSE and webhooks', async () => {
    const catalog = documents.catalog ?? [];
    const { document: parsed } = await new Parser().parse(documents.asyncApi);
    if (!parsed) throw new Error('the document did not parse');
    const channels = new Map(parsed.channels().all().map((channel) => [channel.id(), channel]));
    expect(channels.get('websocket')?.address()).toBe('/v1/ws');
    expect(channels.get('sse')?.address()).toBe('/v1/stream');
    expect(channels.get('webhook')?.address()).toBeNull();

    expect(catalog).toEqual([...testEventTypes.map((type) => type.name), 'refund.issued'].sort());
    for (const name of ['sse', 'webhook']) {
      const control = new Set<string | undefined>(['reset', 'ready', 'end']);
      const messages = channels.get(name)?.messages().all() ?? [];
      const types = messages.map((message) => message.name()).filter((type) => !control.has(type));
      expect(types.sort(), name).toEqual(catalog);
      for (const message of messages.filter((candidate) => !control.has(candidate.name()))) {
        const type = message.payload()?.properties()?.type?.const();
        expect(type, `${name} ${message.name()}`).toBe(message.name());
      }
    }
    const webhookMessage = channels.get('webhook')?.messages().all()[0];
    expect(Object.keys(webhookMessage?.headers()?.properties() ?? {}).sort()).toEqual(['webhook-id', 'webhook-signature', 'webhook-timestamp']);

    const frames = channels.get('websocket')?.messages().all().map((message) => message.id()) ?? [];
    for (const frame of ['auth', 'subscribe', 'unsubscribe', 'ack', 'ping', 'pong']) expect(frames).toContain(`websocket.client.${frame}`);
    for (const frame of ['ready', 'subscribed', 'event', 'reset', 'error', 'ping', 'pong']) expect(frames).toContain(`websocket.server.${frame}`);
    // The client frames are the transport's own validation schemas: strict, with its limits.
    const subscribe = documents.asyncApi.components.messages['websocket.client.subscribe'].payload;
    expect(subscribe.additionalProperties).toBe(false);
    expect(subscribe.properties.types.maxItems).toBe(100);
    expect(JSON.stringify(subscribe.properties.filter)).toContain('"$ref":"#/components/schemas/EventFilter"');
    expect(documents.asyncApi.components.schemas.EventFilterCondition.anyOf).toHaveLength(2);
    expect(subscribe.properties.id.description).toMatch(/name for this subscription/);
    const operations = parsed.operations().all().map((operation) => `${operation.action()} ${operation.channels().all()[0]?.id()}`);
    expect(operations.sort()).toEqual(['receive websocket', 'send sse', 'send webhook', 'send websocket']);
  });

  it('carries the schema of each type’s data from the catalog', async () => {
    const document = documents.asyncApi;
    const envelope = document.components.schemas['Event.order.created'];
    expect(envelope.properties.type.const).toBe('order.created');
    expect(envelope.properties.data.properties.n.type).toBe('number');
    expect(envelope.required).toEqual(expect.arrayContaining(['id', 'seq', 'type', 'time', 'data']));
  });
});

describe('/docs', () => {
  it('is a page that loads both documents from next to it on this server, with no outside resource', async () => {
    const response = documents.docsPage as Response;
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = documents.docsHtml ?? '';
    // Relative, so that the page works under the path Herald is mounted at too.
    expect(html).toContain("fetch('openapi.json')");
    expect(html).toContain("fetch('asyncapi.json')");
    expect(html).not.toMatch(/(src|href)="https?:/);
  });
});
