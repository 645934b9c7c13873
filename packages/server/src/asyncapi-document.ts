import { eventEnvelopeSchema, eventFilterJsonSchemas, type Transport } from '@herald/core';
import type { ApiSurface } from './api-surface.js';
import { embeddable, exportSchema, exportSchemaOr, type JsonSchema } from './json-schema-export.js';

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

/** The `{name}`s of `template`, each described as `variables` says: a server's variables, a channel's parameters. */
function placeholders(template: string | null | undefined, variables: Readonly<Record<string, string>> = {}): Record<string, { description?: string }> | undefined {
  const names = [...(template ?? '').matchAll(/\{([^{}]+)\}/g)].map((match) => match[1] as string);
  if (names.length === 0) return undefined;
  return Object.fromEntries(names.map((name) => [name, variables[name] !== undefined ? { description: variables[name] } : {}]));
}

export interface AsyncApiOptions {
  /** `host[:port]` the clients connect to, e.g. from the request's `Host`. @default 'localhost' */
  host?: string;
  /** The path Herald is served under, e.g. `/events`: the path of the servers that are Herald's own. @default '' (the root) */
  basePath?: string;
}

/**
 * The AsyncAPI 3.0 document of what a Herald pushes: one channel per mounted transport, as its `channel` describes
 * it (the server it is on, the catalog's events, the frames of its protocol), and one message per catalog type.
 */
export function asyncApiDocument(surface: ApiSurface, options: AsyncApiOptions = {}): Record<string, unknown> {
  const types = surface.catalog.list();
  const servers: Record<string, unknown> = {};
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  // The `filter` of a WebSocket `subscribe` refers to them.
  const schemas: Record<string, JsonSchema> = { ...eventFilterJsonSchemas };
  const messages: Record<string, unknown> = {};
  for (const type of types) {
    schemas[`Event.${key(type.name)}`] = typedEnvelope(type.name, type.schema, type.description);
  }

  /** The transport's channel, the server it is on, its messages and the operations that send and receive them. */
  const describe = (transport: Transport) => {
    const id = key(transport.name);
    const { title, description, server, address = null, variables, events = {}, frames = {}, bindings = {} } = transport.channel ?? {};
    // How it sends the catalog's events; none when it sends them only inside its frames.
    const sending = events === false ? undefined : events;
    const headers = sending?.headers ? exportSchemaOr(sending.headers, { type: 'object' }, 'draft-7') : undefined;
    const eventIds = (sending ? types : []).map((type) => {
      const messageId = `${id}.event.${key(type.name)}`;
      messages[messageId] = {
        name: type.name,
        title: type.name,
        ...(type.description ? { summary: type.description } : {}),
        ...(sending?.contentType ? { contentType: sending.contentType } : {}),
        ...(headers ? { headers } : {}),
        payload: ref(`#/components/schemas/Event.${key(type.name)}`),
      };
      return messageId;
    });
    const frameIds = (direction: 'client' | 'server') =>
      Object.entries(frames[direction] ?? {}).map(([name, schema]) => {
        const messageId = `${id}.${direction}.${key(name)}`;
        const summary = direction === 'client' ? `Client → server: \`${name}\`` : `Server → client: \`${name}\``;
        messages[messageId] = { name, title: name, summary: schema.description ?? summary, payload: exportSchemaOr(schema, {}, 'draft-7') };
        return messageId;
      });
    const sent = [...eventIds, ...frameIds('server')];
    const received = frameIds('client');

    if (server) {
      const own = server.host === undefined;
      const serverVariables = placeholders(server.host, variables);
      servers[id] = {
        host: server.host ?? options.host ?? 'localhost',
        ...(own && options.basePath ? { pathname: options.basePath } : {}),
        protocol: server.protocol,
        ...(server.protocolVersion ? { protocolVersion: server.protocolVersion } : {}),
        ...(server.description ? { description: server.description } : {}),
        ...(serverVariables ? { variables: serverVariables } : {}),
      };
    }
    const parameters = placeholders(address, variables);
    channels[id] = {
      address,
      title: title ?? transport.name,
      ...(description ? { description } : {}),
      ...(server ? { servers: [ref(`#/servers/${id}`)] } : {}),
      ...(parameters ? { parameters } : {}),
      messages: Object.fromEntries([...sent, ...received].map((messageId) => [messageId, ref(`#/components/messages/${messageId}`)])),
      ...(bindings.channel ? { bindings: bindings.channel } : {}),
    };
    const operation = (action: 'send' | 'receive', operationTitle: string, ids: string[], operationBindings?: Readonly<Record<string, unknown>>) => ({
      action,
      title: operationTitle,
      channel: ref(`#/channels/${id}`),
      messages: ids.map((messageId) => ref(`#/channels/${id}/messages/${messageId}`)),
      ...(operationBindings ? { bindings: operationBindings } : {}),
    });
    if (sent.length > 0) operations[`${id}.send`] = operation('send', 'Sent by Herald', sent, bindings.operation);
    if (received.length > 0) operations[`${id}.receive`] = operation('receive', 'Sent by clients', received);
  };
  for (const transport of surface.transports.values()) describe(transport);

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
