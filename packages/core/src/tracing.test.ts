import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import { EventBus } from './event-bus.js';
import { defineEventType, EventCatalog } from './event-type-catalog.js';
import { memoryBroker } from './memory-broker.js';
import { postgresStore } from './sql/postgres-store.js';
import { freshDatabase } from './sql/postgres.test-support.js';
import type { SqlStore } from './sql/sql-store.js';
import { sqliteStore } from './sql/sqlite-store.js';
import { deliverySpan, eventTraceContext, heraldTracer, parseTraceparent, requestTraceContext, traceFields } from './tracing.js';

const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
const callerSpan = '00f067aa0ba902b7';
const callerTraceparent = `00-${callerTrace}-${callerSpan}-01`;

async function bus(): Promise<EventBus> {
  const store = sqliteStore({ path: ':memory:' });
  await store.init();
  const catalog = new EventCatalog([defineEventType('order.created', z.object({ n: z.number() }))]);
  const started = new EventBus({ store, broker: memoryBroker(), catalog, pollInterval: 60_000 });
  await started.start();
  onTestFinished(async () => {
    await started.stop();
    await store.close();
  });
  return started;
}

describe('trace context (issue 17)', () => {
  it('parses only valid W3C traceparents', () => {
    expect(parseTraceparent(callerTraceparent, 'a=1')).toMatchObject({ traceId: callerTrace, spanId: callerSpan, traceFlags: 1, isRemote: true });
    expect(parseTraceparent(callerTraceparent, 'a=1')?.traceState?.get('a')).toBe('1');
    // A later version may append fields; version 00 may not.
    expect(parseTraceparent(`01-${callerTrace}-${callerSpan}-00-more`)).toMatchObject({ traceId: callerTrace, traceFlags: 0 });
    for (const invalid of [
      undefined,
      '',
      `00-${callerTrace}-${callerSpan}-01-more`,
      `ff-${callerTrace}-${callerSpan}-01`,
      `00-${'0'.repeat(32)}-${callerSpan}-01`,
      `00-${callerTrace}-${'0'.repeat(16)}-01`,
      `00-${callerTrace.toUpperCase()}-${callerSpan}-01`,
      `00-${callerTrace}-${callerSpan}`,
    ]) {
      expect(parseTraceparent(invalid), String(invalid)).toBeUndefined();
    }
  });

  it('without an OpenTelemetry SDK, an event carries the trace context it was published in, and none when there is none', async () => {
    const events = await bus();
    const traced = await events.publish({ type: 'order.created', data: { n: 1 } }, { parent: requestTraceContext({ traceparent: callerTraceparent, tracestate: 'a=1' }) });
    expect(traced.event).toMatchObject({ traceparent: callerTraceparent, tracestate: 'a=1' });
    const untraced = await events.publish({ type: 'order.created', data: { n: 2 } }, { parent: requestTraceContext({ traceparent: 'garbage' }) });
    expect(untraced.event).not.toHaveProperty('traceparent');
    expect(untraced.event).not.toHaveProperty('tracestate');
  });
});

describe.each([
  ['SQLite', async (): Promise<SqlStore> => sqliteStore({ path: ':memory:' })],
  [
    'PostgreSQL',
    async (): Promise<SqlStore> => {
      const { url, drop } = await freshDatabase();
      onTestFinished(drop);
      return postgresStore({ url });
    },
  ],
] as const)('the log on %s (issue 17)', (_name, makeStore) => {
  it('keeps the trace context of each event, and none for an event without', async () => {
    const store = await makeStore();
    await store.init();
    onTestFinished(() => store.close());
    const base = { specversion: '1.0', type: 'order.created', source: '/herald', time: new Date().toISOString(), datacontenttype: 'application/json', data: {} } as const;
    await store.append([
      { ...base, id: 'evt_traced', traceparent: callerTraceparent, tracestate: 'a=1,b=2' },
      { ...base, id: 'evt_plain' },
    ]);
    const [traced, plain] = await store.read({ after: 0, limit: 10 });
    expect(traced).toMatchObject({ id: 'evt_traced', traceparent: callerTraceparent, tracestate: 'a=1,b=2' });
    expect(plain?.id).toBe('evt_plain');
    expect(plain).not.toHaveProperty('traceparent');
    expect(plain).not.toHaveProperty('tracestate');
  });
});

describe('spans (issue 17)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  beforeAll(() => {
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(contextManager.enable());
  });
  afterEach(() => exporter.reset());
  afterAll(async () => {
    trace.disable();
    context.disable();
    await provider.shutdown();
  });
  const finished = (name: string) => exporter.getFinishedSpans().filter((span) => span.name === name);

  it('traces an in-process publish in the active span: publish → validate, append; the event carries the publish span', async () => {
    const events = await bus();
    const caller = heraldTracer.startSpan('caller');
    const { event } = await context.with(trace.setSpan(context.active(), caller), () => events.publish({ type: 'order.created', data: { n: 1 } }));
    caller.end();
    const [publish] = finished('publish order.created') as [ReadableSpan];
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(publish.parentSpanContext?.spanId).toBe(caller.spanContext().spanId);
    expect(publish.spanContext().traceId).toBe(caller.spanContext().traceId);
    expect(publish.attributes).toMatchObject({ 'messaging.system': 'herald', 'messaging.destination.name': 'order.created', 'messaging.message.id': event.id });
    expect(finished('validate')[0]?.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
    expect(finished('append')[0]?.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
    expect(event.traceparent).toBe(`00-${publish.spanContext().traceId}-${publish.spanContext().spanId}-01`);
  });

  it('marks a publish that fails validation as failed, with no append', async () => {
    const events = await bus();
    await expect(events.publish({ type: 'order.created', data: { n: 'one' } })).rejects.toThrow('does not match the schema');
    const [publish] = finished('publish order.created') as [ReadableSpan];
    expect(publish.status.code).toBe(SpanStatusCode.ERROR);
    expect(finished('validate')[0]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(finished('append')).toEqual([]);
  });

  it('makes one span per live batch: a child of the publish for one event, linked to each publish for several', () => {
    const first = heraldTracer.startSpan('publish one', undefined, ROOT_CONTEXT);
    const second = heraldTracer.startSpan('publish two', undefined, ROOT_CONTEXT);
    const one = { type: 'order.created', ...traceFields(first) };
    const two = { type: 'order.created', ...traceFields(second) };
    deliverySpan('websocket', [one]).end();
    deliverySpan('sse', [one, two, { type: 'order.created' }]).end();
    const [single] = finished('deliver order.created') as [ReadableSpan];
    expect(single.parentSpanContext?.spanId).toBe(first.spanContext().spanId);
    expect(single.attributes).toMatchObject({ 'herald.transport': 'websocket', 'messaging.batch.message_count': 1 });
    const [batch] = finished('deliver') as [ReadableSpan];
    expect(batch.parentSpanContext).toBeUndefined();
    expect(batch.links.map((link) => link.context.spanId)).toEqual([first.spanContext().spanId, second.spanContext().spanId]);
    expect(eventTraceContext({})).toBe(ROOT_CONTEXT);
  });
});
