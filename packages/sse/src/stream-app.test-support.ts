import type { Socket } from 'node:net';
import { defineEventType, type HeraldEvent, type Logger, type Transport } from '@herald/core';
import { appClosedAfterEach, type RestClient, startTestApp, type TestApp } from '@herald/testkit';
import { EventSource } from 'eventsource';
import { z } from 'zod';
import { type SseOptions, type SseTransport, sse } from './sse-transport.js';

export const streamEventTypes = [
  defineEventType('order.created', z.object({ n: z.number() })),
  defineEventType('order.shipped', z.object({ n: z.number() })),
  defineEventType('invoice.paid', z.object({ n: z.number() })),
  defineEventType('blob.created', z.object({ text: z.string() })),
] as const;

/** testkit's test app with the SSE transport, the sockets it has accepted, and the REST client's answers with their headers. */
export interface StreamApp extends Omit<TestApp<typeof streamEventTypes>, 'api'> {
  sse: SseTransport;
  /** Every connection the server accepted and has not yet closed. */
  sockets: Set<Socket>;
  /** The `Last-Event-ID` header of every stream request, in arrival order (undefined when absent). */
  lastEventIds: (string | undefined)[];
  /** testkit's REST client, with the response's headers. */
  api: RestClient['request'];
  /** Destroys every connection on the server side, as a network failure would. */
  dropConnections(): void;
}

export async function startStreamApp(options: SseOptions = {}, more: Transport[] = [], logger?: Logger): Promise<StreamApp> {
  const transport = sse(options);
  const app = await startTestApp([transport, ...more], { eventTypes: streamEventTypes, ...(logger ? { logger } : {}) });
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const lastEventIds: (string | undefined)[] = [];
  app.server.on('request', (request) => {
    const header = request.headers['last-event-id'];
    if (request.url?.startsWith('/v1/stream?')) lastEventIds.push(typeof header === 'string' ? header : undefined);
  });
  return {
    ...app,
    api: app.request,
    sse: transport,
    sockets,
    lastEventIds,
    dropConnections: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** A test file's app and its streams, closed after each test, the streams first (see `appClosedAfterEach`). */
export const closedAfterEach = () => appClosedAfterEach(startStreamApp);

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
