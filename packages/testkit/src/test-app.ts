import { randomBytes } from 'node:crypto';
import { defineEventType, type EventMapOf, type Transport } from '@herald/core';
import { createHerald, type Herald, type HeraldOptions } from '@herald/server';
import { z } from 'zod';

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
}

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
  return { api, request, consumerKey };
}

/** A Herald listening on 127.0.0.1 with an ephemeral port, and a small REST client for it. */
export interface TestApp {
  herald: Herald<EventMapOf<typeof testEventTypes>>;
  baseUrl: string;
  adminKey: string;
  /** An API key for `consumer`, made once per consumer. */
  consumerKey(consumer: string): Promise<string>;
  /** Calls the REST API with `key` (the admin key by default). */
  api(method: string, path: string, body?: unknown, key?: string): Promise<ApiResponse>;
  close(): Promise<void>;
}

/** Starts a Herald on an in-memory SQLite store with the test event types and `transports`. */
export async function startTestApp(transports: Transport[], options: Partial<HeraldOptions> = {}): Promise<TestApp> {
  const adminKey = `admin-${randomBytes(16).toString('hex')}`;
  const herald = createHerald({
    database: ':memory:',
    logLevel: process.env.HERALD_TEST_LOG_LEVEL ?? 'silent',
    env: {},
    ...options,
    adminKey,
    eventTypes: testEventTypes,
    transports,
  });
  const { port } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
  const baseUrl = `http://127.0.0.1:${port}`;
  const { api, consumerKey } = restClient(baseUrl, adminKey);
  return { herald, baseUrl, adminKey, consumerKey, api, close: () => herald.close() };
}
