import { eventEnvelopeSchema, eventFilterJsonSchemas, type TransportFrames } from '@herald/core';
import { z } from 'zod';
import type { ApiSurface } from './api-surface.js';
import { embeddable, exportSchema, type JsonSchema } from './json-schema-export.js';

const webhookHeaders = z.object({
  'webhook-id': z.string().describe('The event id: the same on every retry, for deduplication'),
  'webhook-timestamp': z.string().describe('Unix seconds of this attempt'),
  'webhook-signature': z
    .string()
    .describe('`v1,<base64 HMAC-SHA256 of id.timestamp.body>`; several, space-separated, while a rotated secret is in its grace period'),
});

const ref = (pointer: string) => ({ $ref: pointer });

const envelope = exportSchema(eventEnvelopeSchema, 'draft-7');

/** An envelope whose `type` is this event type and whose `data` has its schema, for AsyncAPI (draft-07). */
function typedEnvelope(name: string, data: JsonSchema, description?: string): JsonSchema {
  const properties = envelope.properties as Record<string, JsonSchema>;
  return {
    ...envelope,
    ...(description ? { description } : {}),
    properties: { ...properties, type: { type: 'string', const: name }, data: embeddable(data) },
  };
}

/** `order.created` → `order-created`, for ids the AsyncAPI spec restricts to `[A-Za-z0-9._-]`. */
function key(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '-');
}

export interface AsyncApiOptions {
  /** `host[:port]` the clients connect to, e.g. from the request's `Host`. @default 'localhost' */
  host?: string;
  /** The path the WebSocket and SSE channels are served under, e.g. `/events`. @default '' (the root) */
  basePath?: string;
}

/**
 * The AsyncAPI 3.0 document of what a Herald pushes: the WebSocket channel (herald.v1 frames), the
 * SSE stream and the webhook messages of the mounted transports, one message per catalog type.
 */
export function asyncApiDocument(surface: ApiSurface, options: AsyncApiOptions = {}): Record<string, unknown> {
  const host = options.host ?? 'localhost';
  const pathname = options.basePath ? { pathname: options.basePath } : {};
  const types = surface.catalog.list();
  const mounted = surface.transports;
  const framesOf = (transport: string): TransportFrames => mounted.get(transport)?.frames ?? { client: {}, server: {} };
  const servers: Record<string, unknown> = {};
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  // The `filter` of a `subscribe` refers to it.
  const schemas: Record<string, JsonSchema> = { ...eventFilterJsonSchemas };
  const messages: Record<string, unknown> = {};

  for (const type of types) {
    schemas[`Event.${key(type.name)}`] = typedEnvelope(type.name, type.schema, type.description);
  }
  const eventMessage = (prefix: string, name: string, description: string | undefined, extra: Record<string, unknown> = {}) => {
    const id = `${prefix}.${key(name)}`;
    messages[id] = {
      name,
      title: name,
      ...(description ? { summary: description } : {}),
      payload: ref(`#/components/schemas/Event.${key(name)}`),
      ...extra,
    };
    return id;
  };
  const frameMessage = (id: string, name: string, schema: z.ZodType, summary: string) => {
    messages[id] = { name, title: name, summary: schema.description ?? summary, payload: exportSchema(schema, 'draft-7') };
    return id;
  };
  const channelMessages = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, ref(`#/components/messages/${id}`)]));
  const operationMessages = (channel: string, ids: string[]) => ids.map((id) => ref(`#/channels/${channel}/messages/${id}`));

  /** A channel, the server it is on, and its operations. */
  const addChannel = (
    id: string,
    spec: {
      server: [id: string, server: Record<string, unknown>];
      address: string | null;
      title: string;
      description: string;
      messages: string[];
      operations: Record<string, { action: 'send' | 'receive'; title: string; messages: string[] }>;
    },
  ) => {
    const [serverId, server] = spec.server;
    servers[serverId] = server;
    channels[id] = {
      address: spec.address,
      title: spec.title,
      description: spec.description,
      servers: [ref(`#/servers/${serverId}`)],
      messages: channelMessages(spec.messages),
    };
    for (const [operationId, operation] of Object.entries(spec.operations)) {
      operations[operationId] = { action: operation.action, title: operation.title, channel: ref(`#/channels/${id}`), messages: operationMessages(id, operation.messages) };
    }
  };

  if (mounted.has('websocket')) {
    const { client, server } = framesOf('websocket');
    const sent = Object.entries(client).map(([name, schema]) => frameMessage(`ws.client.${name}`, name, schema, `Client → server: \`${name}\``));
    const received = Object.entries(server).map(([name, schema]) => frameMessage(`ws.server.${name}`, name, schema, `Server → client: \`${name}\``));
    addChannel('websocket', {
      server: ['websocket', { host, ...pathname, protocol: 'ws', description: 'The WebSocket transport; subprotocol `herald.v1`, JSON text frames.' }],
      address: surface.upgrades.find((upgrade) => upgrade.transport === 'websocket')?.path ?? '/v1/ws',
      title: 'WebSocket (herald.v1)',
      description:
        'Authenticate with `auth` within 10 s (or `Authorization` on the upgrade), then `subscribe` to types or a durable subscription; events arrive as `event` frames. Close codes: 4400 bad message, 4401 unauthorized, 4403 forbidden, 4408 auth timeout, 4409 duplicate subscription id, 4429 too slow, 1001 going away.',
      messages: [...sent, ...received],
      operations: {
        receiveClientFrames: { action: 'receive', title: 'Frames a client sends', messages: sent },
        sendServerFrames: { action: 'send', title: 'Frames the server sends', messages: received },
      },
    });
  }

  if (mounted.has('sse')) {
    const streamRoute = surface.routes.find(
      (route) => route.transport === 'sse' && route.definition.method === 'GET' && route.definition.response?.mediaType === 'text/event-stream',
    );
    const ids = [
      ...types.map((type) => eventMessage('sse', type.name, type.description)),
      ...Object.entries(framesOf('sse').server).map(([name, schema]) => frameMessage(`sse.${name}`, name, schema, `The \`${name}\` event`)),
    ];
    addChannel('sse', {
      server: ['sse', { host, ...pathname, protocol: 'http', description: 'The SSE transport: a `text/event-stream` response.' }],
      address: streamRoute?.definition.path ?? surface.routes.find((route) => route.transport === 'sse')?.definition.path ?? '/v1/stream',
      title: 'Server-Sent Events',
      description:
        'GET with `?types=a,b` (patterns allowed), authorised by `Authorization: Bearer` or `?access_token=` (a stream token). Each event is `id: <seq>`, `event: <type>`, `data: <envelope JSON>`; `Last-Event-ID` (or `?lastEventId=`) resumes after that seq.',
      messages: ids,
      operations: { sendServerSentEvents: { action: 'send', title: 'Events on the stream', messages: ids } },
    });
  }

  if (mounted.has('webhook') && types.length > 0) {
    const headers = exportSchema(webhookHeaders, 'draft-7');
    const ids = types.map((type) => eventMessage('webhook', type.name, type.description, { headers, contentType: 'application/json' }));
    addChannel('webhook', {
      server: [
        'webhookEndpoint',
        {
          host: '{endpoint}',
          protocol: 'https',
          description: 'The consumer’s endpoint: the `config.url` of a webhook subscription.',
          variables: { endpoint: { description: 'The host of the subscription’s URL' } },
        },
      ],
      address: null,
      title: 'Webhooks (Standard Webhooks)',
      description:
        'A POST to each matching webhook subscription’s `config.url`, with the envelope as the JSON body, signed per Standard Webhooks. 2xx is delivered; anything else is retried on a schedule.',
      messages: ids,
      operations: { sendWebhooks: { action: 'send', title: 'Webhook deliveries', messages: ids } },
    });
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Herald events',
      version: '1',
      description:
        'What a Herald server pushes to its consumers, one message per event type of its catalog, over the transports it has mounted. The REST API is described in `/openapi.json`.',
    },
    defaultContentType: 'application/json',
    servers,
    channels,
    operations,
    components: { schemas, messages },
  };
}
