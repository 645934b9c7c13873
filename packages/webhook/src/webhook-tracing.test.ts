import type { HeraldEvent } from '@herald/core';
import { startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { subscribeWebhook } from './subscribe-webhook.test-support.js';
import { startReceiver, type TestReceiver } from './test-receiver.test-support.js';
import { webhook } from './webhook-transport.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  trace.disable();
  await provider.shutdown();
});

// Before each test rather than after: a test's cleanups run after its hooks, and the spans they end go too.
beforeEach(() => exporter.reset());

/** The caller's trace: the span that made the publish request. */
const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
const callerSpan = '00f067aa0ba902b7';
const callerTraceparent = `00-${callerTrace}-${callerSpan}-01`;

async function setup(): Promise<{ app: TestApp; inbox: TestReceiver; subscription: string; key: string }> {
  const app = await startTestApp([webhook({ pollInterval: 50 })], { env: { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' } });
  onTestFinished(() => app.close());
  const inbox = await startReceiver();
  const { id: subscription, key } = await subscribeWebhook(app, { url: inbox.url }, { types: ['order.*'] });
  return { app, inbox, subscription, key };
}

/** A POST with the caller's `traceparent` and `tracestate` headers. */
async function tracedPost(app: TestApp, path: string, body: unknown, key: string): Promise<Response> {
  return fetch(`${app.baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', traceparent: callerTraceparent, tracestate: 'vendor=abc' },
    body: JSON.stringify(body),
  });
}

const finished = (name: string) => exporter.getFinishedSpans().filter((span) => span.name === name);
const only = (name: string): ReadableSpan => {
  const spans = finished(name);
  expect(spans.map((span) => span.name)).toEqual([name]);
  return spans[0] as ReadableSpan;
};
const traceparentOf = (span: ReadableSpan) => `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`;

describe('OpenTelemetry tracing (issue 17)', () => {
  it('traces publish → validate, append, and the webhook attempt in the caller’s trace, and sends the attempt’s traceparent', async () => {
    const { app, inbox, subscription } = await setup();
    const published = await tracedPost(app, '/v1/events', { type: 'order.created', data: { n: 1 } }, app.adminKey);
    expect(published.status).toBe(202);
    await waitFor(() => finished('send order.created').length === 1, 'the attempt span');

    const publish = only('publish order.created');
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(publish.spanContext().traceId).toBe(callerTrace);
    expect(publish.parentSpanContext?.spanId).toBe(callerSpan);
    expect(publish.attributes).toMatchObject({
      'messaging.system': 'herald',
      'messaging.operation.name': 'publish',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'order.created',
    });
    for (const step of ['validate', 'append']) {
      const span = only(step);
      expect(span.spanContext().traceId).toBe(callerTrace);
      expect(span.parentSpanContext?.spanId, step).toBe(publish.spanContext().spanId);
    }

    // The event carries the publish's trace context (CloudEvents distributed tracing), in the log and on the wire.
    const [request] = inbox.requests;
    const delivered = JSON.parse(request?.body ?? '{}') as HeraldEvent;
    expect(delivered.traceparent).toBe(traceparentOf(publish));
    expect(delivered.tracestate).toBe('vendor=abc');
    const logged = await app.api('GET', '/v1/events?after=0', undefined, app.adminKey);
    expect(logged.body.data[0]).toMatchObject({ id: delivered.id, traceparent: traceparentOf(publish), tracestate: 'vendor=abc' });

    const attempt = only('send order.created');
    expect(attempt.spanContext().traceId).toBe(callerTrace);
    expect(attempt.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
    expect(attempt.attributes).toMatchObject({
      'messaging.system': 'herald',
      'messaging.destination.name': 'order.created',
      'messaging.message.id': delivered.id,
      'herald.transport': 'webhook',
      'herald.subscription.id': subscription,
      'herald.delivery.attempt': 1,
      'herald.delivery.outcome': 'delivered',
      'herald.delivery.response_status': 204,
    });
    // The receiver joins the trace under the attempt that reached it.
    expect(request?.headers.traceparent).toBe(traceparentOf(attempt));
    expect(request?.headers.tracestate).toBe('vendor=abc');
  });

  it('marks a failed attempt, and traces a replay in the caller’s trace with its redeliveries under the original publish', async () => {
    const { app, inbox, subscription, key } = await setup();
    inbox.reply(() => ({ status: 500 }));
    expect((await tracedPost(app, '/v1/events', { type: 'order.created', data: { n: 1 } }, app.adminKey)).status).toBe(202);
    await waitFor(() => finished('send order.created').length >= 1, 'the failed attempt');
    const [failed] = finished('send order.created');
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed?.attributes['herald.delivery.outcome']).toBe('failed');

    inbox.reply(() => ({ status: 204 }));
    const publish = only('publish order.created');
    exporter.reset();
    const replayed = await tracedPost(app, `/v1/subscriptions/${subscription}/replay`, { after: 0 }, key);
    expect(replayed.status).toBe(202);
    await waitFor(() => finished('replay').length === 1, 'the replay span');
    const replay = only('replay');
    expect(replay.spanContext().traceId).toBe(callerTrace);
    expect(replay.parentSpanContext?.spanId).toBe(callerSpan);
    expect(replay.attributes).toMatchObject({ 'herald.subscription.id': subscription, 'herald.replay.status': 'completed', 'herald.replay.replayed': 1 });
    expect(replay.events.map((event) => event.name)).toEqual(['batch']);

    await waitFor(() => finished('send order.created').some((span) => span.attributes['herald.delivery.outcome'] === 'delivered'), 'the replayed delivery');
    const redelivery = finished('send order.created').find((span) => span.attributes['herald.delivery.outcome'] === 'delivered') as ReadableSpan;
    expect(redelivery.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
    expect(inbox.requests.at(-1)?.headers.traceparent).toBe(traceparentOf(redelivery));
  });
});
