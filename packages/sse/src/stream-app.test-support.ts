import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { defineEventType, type HeraldEvent, type Logger, type Transport } from '@herald/core';
import { createHerald, type Herald } from '@herald/server';
import { type RestClient, restClient } from '@herald/testkit';
import { EventSource } from 'eventsource';
import { z } from 'zod';
import { type SseOptions, type SseTransport, sse } from './sse-transport.js';

export const streamEventTypes = [
  defineEventType('order.created', z.object({ n: z.number() })),
  defineEventType('order.shipped', z.object({ n: z.number() })),
  defineEventType('invoice.paid', z.object({ n: z.number() })),
  defineEventType('blob.created', z.object({ text: z.string() })),
] as const;

type StreamHerald = Herald<{ 'order.created': { n: number }; 'order.shipped': { n: number }; 'invoice.paid': { n: number }; 'blob.created': { text: string } }>;

/** A Herald with the SSE transport on 127.0.0.1, the sockets it has accepted, and a small REST client. */
export interface StreamApp {
  herald: StreamHerald;
  sse: SseTransport;
  server: Server;
  baseUrl: string;
  adminKey: string;
  /** Every connection the server accepted and has not yet closed. */
  sockets: Set<Socket>;
  /** The `Last-Event-ID` header of every stream request, in arrival order (undefined when absent). */
  lastEventIds: (string | undefined)[];
  consumerKey(consumer: string): Promise<string>;
  streamToken(key: string, body?: Record<string, unknown>): Promise<string>;
  /** testkit's REST client, with the response's headers. */
  api: RestClient['request'];
  /** Destroys every connection on the server side, as a network failure would. */
  dropConnections(): void;
  close(): Promise<void>;
}

export async function startStreamApp(options: SseOptions = {}, more: Transport[] = [], logger?: Logger): Promise<StreamApp> {
  const adminKey = `admin-${randomBytes(16).toString('hex')}`;
  const transport = sse(options);
  const herald: StreamHerald = createHerald({
    database: ':memory:',
    logLevel: process.env.HERALD_TEST_LOG_LEVEL ?? 'silent',
    env: {},
    adminKey,
    eventTypes: streamEventTypes,
    transports: [transport, ...more],
    ...(logger ? { logger } : {}),
  });
  const { server, port } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const lastEventIds: (string | undefined)[] = [];
  server.on('request', (request) => {
    const header = request.headers['last-event-id'];
    if (request.url?.startsWith('/v1/stream?')) lastEventIds.push(typeof header === 'string' ? header : undefined);
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const { request: api, consumerKey } = restClient(baseUrl, adminKey);
  const streamToken = async (key: string, body: Record<string, unknown> = {}) => {
    const { status, body: answer } = await api('POST', '/v1/stream-tokens', body, key);
    if (status !== 201) throw new Error(`Issuing a stream token answered ${status}: ${JSON.stringify(answer)}`);
    return answer.token as string;
  };
  return {
    herald,
    sse: transport,
    server,
    baseUrl,
    adminKey,
    sockets,
    lastEventIds,
    consumerKey,
    streamToken,
    api,
    dropConnections: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () => herald.close(),
  };
}

/** The `eventsource` package's EventSource, sending `key` as `Authorization: Bearer`. */
export function eventSourceWithKey(url: string, key?: string): EventSource {
  if (key === undefined) return new EventSource(url);
  return new EventSource(url, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${key}` } }),
  });
}

/** Collects the envelopes an EventSource receives as named events of `types` (or as plain messages when empty). */
export function collectEvents(source: EventSource, types: readonly string[] = []): HeraldEvent[] {
  const events: HeraldEvent[] = [];
  const take = (message: MessageEvent) => events.push(JSON.parse(message.data as string) as HeraldEvent);
  if (types.length === 0) source.addEventListener('message', take);
  for (const type of types) source.addEventListener(type, take);
  return events;
}

/** Resolves when the EventSource is open; rejects when it fails first. */
export function opened(source: EventSource): Promise<void> {
  return new Promise((resolve, reject) => {
    source.addEventListener('open', () => resolve(), { once: true });
    source.addEventListener(
      'error',
      (error) => {
        if (source.readyState === EventSource.CLOSED) reject(new Error(`The EventSource failed: ${(error as { message?: string }).message}`));
      },
      { once: true },
    );
  });
}
