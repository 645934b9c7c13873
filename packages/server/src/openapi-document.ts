import { credentialEndReasons, eventFilterJsonSchemas, publishInputSchema, type Transport } from '@herald/core';
import { z } from 'zod';
import type { ApiSurface, DocumentedRoute, PlainRoute } from './api-surface.js';
import { embeddable, exportSchema, exportSchemaOr, type JsonSchema } from './json-schema-export.js';
import { emptyConfig } from './routes/subscription-routes.js';

type Operation = Record<string, unknown>;

const problemSchema = z.object({
  type: z.string().describe('`urn:herald:problem:<code>`'),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().optional(),
  errors: z
    .array(z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string(), code: z.string().optional() }))
    .optional()
    .describe('The validation issues'),
  reason: z
    .enum(credentialEndReasons)
    .optional()
    .describe('On a 401, why a credential that was good once is refused: its token expired, or it or the key that issued it was revoked'),
});

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/** `/v1/subscriptions/:id` → `/v1/subscriptions/{id}`, and the names of its parameters. */
function openApiPath(path: string): { path: string; params: string[] } {
  const params: string[] = [];
  const converted = path.replace(/:([A-Za-z0-9_]+)/g, (_match, name: string) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path: converted, params };
}

/** `POST /v1/subscriptions/:id/replay` → `postSubscriptionsByIdReplay`. */
function operationId(method: string, path: string): string {
  const words = path
    .split('/')
    .filter((segment) => segment !== '' && segment !== 'v1')
    .map((segment) => (segment.startsWith(':') ? `by-${segment.slice(1)}` : segment))
    .flatMap((segment) => segment.split(/[^A-Za-z0-9]+/))
    .filter((word) => word !== '');
  return method.toLowerCase() + words.map((word) => word[0]?.toUpperCase() + word.slice(1)).join('');
}

function tagOf(route: DocumentedRoute): string {
  if (route.transport) return route.transport;
  return route.definition.path.split('/').filter((segment) => segment !== '' && segment !== 'v1')[0] ?? 'herald';
}

/** A query schema's properties as `in: query` parameters. */
function queryParameters(schema: z.ZodType): Operation[] {
  const json = exportSchema(schema);
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: 'query',
    required: required.has(name),
    ...(typeof property.description === 'string' ? { description: property.description } : {}),
    schema: property,
  }));
}

/** The publish body names every type of the catalog with the schema of its `data`. */
function publishBody(surface: ApiSurface): JsonSchema {
  const base = exportSchema(publishInputSchema);
  const types = surface.catalog.list();
  if (types.length === 0) return base;
  const baseProperties = (base.properties ?? {}) as Record<string, JsonSchema>;
  return {
    oneOf: types.map((type) => ({
      ...base,
      title: type.name,
      ...(type.description ? { description: type.description } : {}),
      properties: {
        ...baseProperties,
        type: { const: type.name },
        data: { $ref: `#/components/schemas/${eventDataSchemaName(type.name)}` },
      },
    })),
  };
}

/** The component name of a transport's subscription config. */
function configSchemaName(transport: string): string {
  return `SubscriptionConfig.${transport.replace(/[^A-Za-z0-9_.-]/g, '-')}`;
}

/** What a transport's `configSchema` takes, as JSON Schema; a free object where it cannot be exported. */
function configSchemaOf(transport: Transport): JsonSchema {
  const free = { type: 'object', description: `The config of a \`${transport.name}\` subscription (its schema cannot be shown as JSON Schema)` };
  return exportSchemaOr(transport.configSchema ?? emptyConfig, free);
}

/** The body of `POST /v1/subscriptions`: its `transport` names one of the mounted transports, which says what its `config` is. */
function createSubscriptionBody(base: JsonSchema, configs: ReadonlyMap<string, JsonSchema>): JsonSchema {
  if (configs.size === 0) return base;
  const properties = (base.properties ?? {}) as Record<string, JsonSchema>;
  const anyConfig = { type: 'object', default: {}, description: 'What the `transport` takes: its form in `oneOf`' };
  return {
    ...base,
    properties: { ...properties, config: anyConfig },
    oneOf: [...configs].map(([name, config]) => ({
      title: name,
      properties: { transport: { const: name }, config: { $ref: `#/components/schemas/${configSchemaName(name)}` } },
      // A config with required fields must be given; one without them may be left out (it is then `{}`).
      ...(Array.isArray(config.required) && config.required.length > 0 ? { required: ['config'] } : {}),
    })),
  };
}

/** The body of `PATCH /v1/subscriptions/:id`: its `config` names the fields to change, of the subscription's transport's config. */
function changeSubscriptionBody(base: JsonSchema, configs: ReadonlyMap<string, JsonSchema>): JsonSchema {
  if (configs.size === 0) return base;
  const properties = (base.properties ?? {}) as Record<string, JsonSchema>;
  const fields = [...configs].map(([name, { required: _required, ...config }]) => ({ ...config, title: name }));
  return {
    ...base,
    properties: {
      ...properties,
      config: {
        description: 'The fields to change, merged into the stored config: any of the fields of the subscription’s transport’s config',
        anyOf: fields,
      },
    },
  };
}

/** The component name of an event type's data schema. */
export function eventDataSchemaName(type: string): string {
  return `EventData.${type}`;
}

/** A route's JSON body; those of publishing and of subscriptions name each event type and each transport's config. */
function requestBody(route: DocumentedRoute, surface: ApiSurface, configs: ReadonlyMap<string, JsonSchema>): JsonSchema | undefined {
  const { body, method, path } = route.definition;
  if (!body) return undefined;
  if (body === publishInputSchema) return publishBody(surface);
  const schema = exportSchema(body);
  if (route.transport !== undefined) return schema;
  if (method === 'POST' && path === '/v1/subscriptions') return createSubscriptionBody(schema, configs);
  if (method === 'PATCH' && path === '/v1/subscriptions/:id') return changeSubscriptionBody(schema, configs);
  return schema;
}

function routeOperation(route: DocumentedRoute, surface: ApiSurface, configs: ReadonlyMap<string, JsonSchema>): Operation {
  const { definition } = route;
  const { params } = openApiPath(definition.path);
  const success = definition.response ?? {};
  const status = success.status ?? 200;
  const mediaType = success.mediaType ?? 'application/json';
  const successContent =
    status === 204
      ? {}
      : success.body
        ? { content: { [mediaType]: { schema: exportSchema(success.body) } } }
        : mediaType !== 'application/json'
          ? { content: { [mediaType]: { schema: { type: 'string' } } } }
          : {};
  const responses: Record<string, unknown> = {
    [String(status)]: { description: success.description ?? (status === 204 ? 'No content' : 'OK'), ...successContent },
  };
  if (definition.body) {
    responses['400'] = problem('The body is not valid JSON');
    responses['415'] = problem('The body is not application/json');
  }
  responses['401'] = problem('No valid API key (or stream or portal token); `reason` tells an expired token or a revoked key');
  if (definition.role === 'admin') responses['403'] = problem('Only an admin key may do this');
  else if (!(definition.portalToken ?? definition.streamToken)) responses['403'] = problem('Not for a portal token (`portal-token-forbidden`) or a stream token');
  if (params.length > 0) responses['404'] = problem('Not found, or not this key’s to see');
  if (definition.body || definition.query) responses['422'] = problem('The input does not fit its schema; `errors` lists the issues');
  responses['429'] = {
    ...problem('Over a rate limit: the key’s or token’s requests (`rateLimit`), or this address’s failed authentications (`authFailureLimit`)'),
    headers: {
      'Retry-After': { description: 'Seconds until the quota resets', schema: { type: 'integer' } },
      RateLimit: { description: 'What is left of the quota (draft-ietf-httpapi-ratelimit-headers), e.g. `"key";r=12;t=30`', schema: { type: 'string' } },
      'RateLimit-Policy': { description: 'The quota, e.g. `"key";q=600;w=60`', schema: { type: 'string' } },
    },
  };

  const parameters = [
    ...params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
    ...(definition.query ? queryParameters(definition.query) : []),
  ];
  const body = requestBody(route, surface, configs);
  return {
    operationId: operationId(definition.method, definition.path),
    tags: [tagOf(route)],
    ...(definition.summary ? { summary: definition.summary } : {}),
    ...(definition.role === 'admin' ? { description: 'Admin keys only.' } : (definition.portalToken ?? definition.streamToken) ? { description: 'A portal token (`hp_...`) may call it, as its consumer.' } : {}),
    security: definition.queryToken ? [{ bearer: [] }, { accessToken: [] }] : [{ bearer: [] }],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(body ? { requestBody: { required: !(definition.body as z.ZodType).safeParse(undefined).success, content: { 'application/json': { schema: body } } } } : {}),
    responses,
  };
}

function plainOperation(route: PlainRoute): Operation {
  const mediaType = route.mediaType ?? 'application/json';
  return {
    operationId: operationId('GET', route.path),
    tags: [route.tag],
    summary: route.summary,
    security: [],
    responses: {
      '200': {
        description: 'OK',
        content: { [mediaType]: { schema: route.body ? exportSchema(route.body) : mediaType === 'application/json' ? {} : { type: 'string' } } },
      },
    },
  };
}

function upgradeOperation(path: string, transport: string): Operation {
  return {
    operationId: operationId('GET', path),
    tags: [transport],
    summary: 'Open a WebSocket (subprotocol herald.v1)',
    description:
      'An HTTP upgrade to WebSocket. Authenticate with `Authorization: Bearer <key>` on the upgrade, or with an `auth` message carrying a stream token. The messages are described in `/asyncapi.json`.',
    security: [{ bearer: [] }, {}],
    responses: {
      '101': { description: 'Switching Protocols: the WebSocket is open' },
      '404': problem('Not an upgrade request'),
    },
  };
}

export interface OpenApiOptions {
  /** The path the routes are served under, e.g. `/events`. @default '' (the root) */
  basePath?: string;
}

/** The OpenAPI 3.1 document of everything `surface` serves, generated from the routes' zod schemas and the catalog. */
export function openApiDocument(surface: ApiSurface, options: OpenApiOptions = {}): Record<string, unknown> {
  const paths: Record<string, Record<string, Operation>> = {};
  const add = (method: string, path: string, operation: Operation) => {
    const converted = openApiPath(path).path;
    const item = (paths[converted] ??= {});
    item[method.toLowerCase()] = operation;
  };
  for (const route of surface.plainRoutes) add('GET', route.path, plainOperation(route));
  const configs = new Map([...surface.transports.values()].map((transport) => [transport.name, configSchemaOf(transport)]));
  for (const route of surface.routes) add(route.definition.method, route.definition.path, routeOperation(route, surface, configs));
  for (const upgrade of surface.upgrades) add('GET', upgrade.path, upgradeOperation(upgrade.path, upgrade.transport));

  const schemas: Record<string, JsonSchema> = { Problem: exportSchema(problemSchema), ...eventFilterJsonSchemas };
  for (const [name, config] of configs) schemas[configSchemaName(name)] = config;
  for (const type of surface.catalog.list()) {
    schemas[eventDataSchemaName(type.name)] = { ...embeddable(type.schema), ...(type.description ? { description: type.description } : {}) };
  }
  const tags = [...new Set(Object.values(paths).flatMap((item) => Object.values(item).flatMap((operation) => operation.tags as string[])))];
  return {
    openapi: '3.1.0',
    info: {
      title: 'Herald API',
      version: '1',
      description:
        'The REST API of a Herald server: API keys, the event-type catalog, publishing and reading the log, subscriptions, stream tokens, and the routes of its transports. Errors are RFC 9457 `application/problem+json`. Pushed events (WebSocket, SSE, webhooks) are described in `/asyncapi.json`.',
    },
    servers: [{ url: options.basePath || '/' }],
    tags: tags.map((name) => ({ name })),
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API key (`hk_...`), a stream token (`hs_...`) or a portal token (`hp_...`)' },
        accessToken: { type: 'apiKey', in: 'query', name: 'access_token', description: 'A stream token, for browser EventSource, which cannot send headers' },
      },
    },
  };
}
