import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { defineEventType, type EventMapOf, type EventTypeDefinition, type HeraldEvent, type Transport } from '@herald/core';
import { createHerald, type Herald, type HeraldOptions } from '@herald/server';
import { z } from 'zod';
import type { ClientConnection, Receiver, TransportHarness } from './transport-harness.js';

/** The event types every suite publishes. */
export const testEventTypes = [
  defineEventType('order.created', z.object({ n: z.number() })),
  defineEventType('order.shipped', z.object({ n: z.number() })),
  defineEventType('order.line.added', z.object({ n: z.number() })),
  defineEventType('invoice.paid', z.object({ n: z.number() })),
  defineEventType('user.signed_up', z.object({ n: z.number() })),
] as const;

export interface ApiResponse {
  status: number;
  body: any;
}

/** A small client of a Herald's REST API, authorised by default with its admin key. */
export interface RestClient {
  /** Calls the REST API with `key` (the admin key by default). */
  api(method: string, path: string, body?: unknown, key?: string): Promise<ApiResponse>;
  /** {@link api} with the response's headers too. */
  request(method: string, path: string, body?: unknown, key?: string): Promise<ApiResponse & { headers: Headers }>;
  /** An API key for `consumer`, made once per consumer. */
  consumerKey(consumer: string): Promise<string>;
  /** A stream token issued with `key` (`POST /v1/stream-tokens` with `body`); throws unless it is issued. */
  streamToken(key: string, body?: Record<string, unknown>): Promise<string>;
}

/** A {@link RestClient} of the Herald at `baseUrl`. */
export function restClient(baseUrl: string, adminKey: string): RestClient {
  const request: RestClient['request'] = async (method, path, body, key = adminKey) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  };
  // Without the headers, so that callers can compare whole responses.
  const api: RestClient['api'] = async (...args) => {
    const { status, body } = await request(...args);
    return { status, body };
  };
  const keys = new Map<string, Promise<string>>();
  const consumerKey = (consumer: string) => {
    let key = keys.get(consumer);
    if (!key) {
      key = api('POST', '/v1/keys', { role: 'consumer', consumer }).then(({ status, body }) => {
        if (status !== 201) throw new Error(`Creating a key for ${consumer} answered ${status}`);
        return body.key as string;
      });
      keys.set(consumer, key);
    }
    return key;
  };
  const streamToken = async (key: string, body: Record<string, unknown> = {}) => {
    const { status, body: answer } = await api('POST', '/v1/stream-tokens', body, key);
    if (status !== 201) throw new Error(`Issuing a stream token answered ${status}: ${JSON.stringify(answer)}`);
    return answer.token as string;
  };
  return { api, request, consumerKey, streamToken };
}

/** A Herald listening on 127.0.0.1 with an ephemeral port, and a small REST client for it. */
export interface TestApp<TEventTypes extends readonly EventTypeDefinition[] = typeof testEventTypes> extends RestClient {
  herald: Herald<EventMapOf<TEventTypes>>;
  /** The HTTP server it listens on. */
  server: Server;
  baseUrl: string;
  adminKey: string;
  close(): Promise<void>;
}

/**
 * Starts a Herald on an in-memory SQLite store with `transports` and the test event types (or those of
 * `options.eventTypes`). The one test app: every package's tests that need a server start it here, or
 * through {@link withTestApp}.
 */
export async function startTestApp<const TEventTypes extends readonly EventTypeDefinition[] = typeof testEventTypes>(
  transports: Transport[],
  options: Partial<HeraldOptions<TEventTypes>> = {},
): Promise<TestApp<TEventTypes>> {
  const adminKey = `admin-${randomBytes(16).toString('hex')}`;
  const herald = createHerald({
    database: ':memory:',
    logLevel: process.env.HERALD_TEST_LOG_LEVEL ?? 'silent',
    env: {},
    ...options,
    adminKey,
    eventTypes: options.eventTypes ?? (testEventTypes as unknown as TEventTypes),
    transports,
  });
  const { server, port } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  const baseUrl = `http://127.0.0.1:${port}`;
  return { herald, server, baseUrl, adminKey, ...restClient(baseUrl, adminKey), close: () => herald.close() };
}

/** Starts a receiver on a durable subscription; closed with the server. */
export type Receive = (consumer: string, types: string[]) => Promise<Receiver>;

/** What a case gets: a fresh server, and ways to receive from it that are cleaned up after the case. */
export interface SuiteApp {
  app: TestApp;
  receive: Receive;
  /** Keeps a client connection to close after the case. */
  track(connection: ClientConnection): ClientConnection;
}

/** Runs `check` against a fresh {@link startTestApp} server with `harness`'s transport; closes its receivers, connections and the server afterwards. */
export async function withTestApp(harness: TransportHarness, check: (suite: SuiteApp) => Promise<void>, options: Partial<HeraldOptions> = {}): Promise<void> {
  const app = await startTestApp([harness.transport()], { ...harness.options, ...options });
  const open: { close(): Promise<void> }[] = [];
  const receive: Receive = async (consumer, types) => {
    const receiver = await harness.receive(app, { consumer, types });
    open.push(receiver);
    return receiver;
  };
  const track = (connection: ClientConnection) => {
    open.push(connection);
    return connection;
  };
  try {
    await check({ app, receive, track });
  } finally {
    await app.close();
    await Promise.all(open.map((item) => item.close()));
  }
}

/** Publishes an event of `type` with data `{ n }` (addressed to `consumer`, when given) on `app`. */
export async function publish(app: TestApp, type: string, n: number, consumer?: string): Promise<HeraldEvent> {
  const { event } = await app.herald.publish({ type, data: { n }, ...(consumer !== undefined ? { consumer } : {}) } as never);
  return event;
}

/** A subscription {@link subscribeConsumer} made: its id, its config as the API answered it (a webhook's with its secret), and the consumer's API key. */
export interface ConsumerSubscription {
  id: string;
  config: Record<string, unknown>;
  key: string;
}

/**
 * Subscribes `consumer` (with its own API key) to `types` over `transport` with `config`; throws with the
 * answer unless the subscription is made.
 */
export async function subscribeConsumer(
  app: RestClient,
  transport: string,
  config: Record<string, unknown>,
  { types = ['**'], consumer = 'acme' }: { types?: string[]; consumer?: string } = {},
): Promise<ConsumerSubscription> {
  const key = await app.consumerKey(consumer);
  const { status, body } = await app.api('POST', '/v1/subscriptions', { transport, types, config }, key);
  if (status !== 201) throw new Error(`creating a ${transport} subscription answered ${status}: ${JSON.stringify(body)}`);
  return { id: body.id as string, config: body.config as Record<string, unknown>, key };
}

/** The ids of `events`, in order. */
export const idsOf = (events: readonly HeraldEvent[]) => events.map((event) => event.id);

/** What {@link deliveryAttempts} lists of each attempt. */
export interface AttemptView {
  status: string;
  error: string | null;
}

/** Every attempt of a push subscription's deliveries, newest delivery first, as the admin sees them. */
export async function deliveryAttempts(app: TestApp, subscriptionId: string): Promise<AttemptView[]> {
  const { body } = await app.api('GET', `/v1/subscriptions/${subscriptionId}/deliveries`);
  return (body.data as { attempts: AttemptView[] }[]).flatMap((delivery) => delivery.attempts);
}

/**
 * The value of one series on the app's `/metrics` now, e.g. `herald_transport_backlog{transport="webhook",scope="shared"}`
 * (labels as the server writes them); undefined when it has none.
 */
export async function metricValue(app: { baseUrl: string }, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${app.baseUrl}/metrics`)).text();
  const line = text.split('\n').find((row) => row.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Publishes `count` events of `type` with data `{ n }` (0, 1, ...), 50 to a call; resolves with them in order. */
export async function publishNumbered(app: TestApp, count: number, type: 'order.created' | 'invoice.paid' = 'order.created'): Promise<HeraldEvent[]> {
  const published: HeraldEvent[] = [];
  for (let n = 0; n < count; n += 50) {
    const batch = Array.from({ length: Math.min(50, count - n) }, (_, i) => ({ type, data: { n: n + i } }));
    const results = await app.herald.bus.publishMany(batch as never);
    published.push(...results.map(({ event }) => event));
  }
  return published;
}
