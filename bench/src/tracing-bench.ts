/**
 * What OpenTelemetry tracing costs Herald with no SDK registered (the API's no-op tracer): the spans of a
 * publish, of a push delivery attempt and of a live WebSocket/SSE batch, each against work Herald does
 * anyway in the same place, measured in the same run. Prints a markdown section.
 * Run alone: `pnpm --filter @herald/bench exec tsx --conditions=herald-source src/tracing-bench.ts`.
 */
import { deliverySpan, eventTraceContext, type HeraldEvent, inSpan, messagingAttributes, startSpan, traceFields } from '@herald/core';
import { webhookRequest } from '@herald/webhook';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { measuredWith } from './lib/machine.js';
import { markdownTable } from './lib/markdown.js';
import { type AlternateOptions, alternate, envNumber, progress, type Workload } from './lib/rounds.js';
import { formatRatio } from './lib/stats.js';

const schedule: AlternateOptions = {
  rounds: envNumber('BENCH_ROUNDS', 3),
  slices: envNumber('BENCH_CORE_SLICES', 4),
  sliceMilliseconds: envNumber('BENCH_CORE_SLICE_MS', 300),
};
const batch = 500;

const event: HeraldEvent = {
  specversion: '1.0',
  id: 'evt_0',
  seq: 1,
  type: 'bench.event',
  source: '/herald',
  time: new Date().toISOString(),
  datacontenttype: 'application/json',
  data: { n: 0, pad: 'x'.repeat(200) },
};
const body = JSON.stringify(event);
const config = { url: 'https://example.com/hook', secret: `whsec_${Buffer.alloc(32, 7).toString('base64')}` };
const events = Array.from({ length: batch }, (_, i) => ({ ...event, seq: i + 1 }));

/** Runs `op` in a loop for about `milliseconds`; the units are its calls. */
function loop(op: () => void): Workload {
  return async (milliseconds) => {
    const until = performance.now() + milliseconds;
    let done = 0;
    while (performance.now() < until) {
      for (let i = 0; i < 100; i++) op();
      done += 100;
    }
    return done;
  };
}

if (trace.getTracerProvider().getTracer('probe').startSpan('probe').isRecording()) throw new Error('a tracer provider is registered: this measures the no-op API');

const workloads = {
  // What every webhook attempt does anyway: its Standard Webhooks headers, signed.
  sign: loop(() => void webhookRequest(config, event.id, body, Date.now())),
  // The delivery engine's span of one attempt, as `@herald/outbox`'s attempt-span.ts makes it.
  attempt: loop(() => {
    const span = startSpan(`send ${event.type}`, SpanKind.PRODUCER, eventTraceContext(event), () => ({ ...messagingAttributes('send', event.type), 'messaging.message.id': event.id }));
    traceFields(span);
    span.end();
  }),
  // The event bus's spans of one publish: publish, validate, append.
  publish: loop(() => {
    const span = startSpan(`publish ${event.type}`, SpanKind.PRODUCER, context.active(), () => messagingAttributes('publish', event.type));
    const inside = trace.setSpan(context.active(), span);
    traceFields(span);
    inSpan('validate', inside, () => 0);
    inSpan('append', inside, () => 0);
    span.end();
  }),
  // The stream sessions' span of one live batch of 500 events, whatever the number of connections.
  deliver: loop(() => deliverySpan('websocket', events).end()),
};

progress('warming up');
await alternate({ rounds: 1, slices: 1, sliceMilliseconds: 500 }, workloads);
const rates = await alternate(schedule, workloads);
const ns = (name: keyof typeof workloads) => 1e9 / rates[name].total;

console.log(`## OpenTelemetry tracing with no SDK (issue 17)

${measuredWith('pnpm bench tracing')}

In process, one op after another in ${schedule.sliceMilliseconds} ms turns, ${schedule.rounds} rounds; no tracer provider is registered, as for
a user without OpenTelemetry. Each span is set against work Herald does at the same place anyway.

${markdownTable(
  ['what', 'per op', 'against'],
  [
    ['signing one webhook request (Standard Webhooks headers)', `${ns('sign').toFixed(0)} ns`, 'baseline'],
    ['the span of one push delivery attempt', `${ns('attempt').toFixed(0)} ns`, `${formatRatio(ns('attempt') / ns('sign'))} of signing it`],
    ['the spans of one publish (publish, validate, append)', `${ns('publish').toFixed(0)} ns`, `${formatRatio(ns('publish') / ns('sign'))} of signing a webhook`],
    [
      `the span of one live batch of ${batch} events (WebSocket, SSE)`,
      `${ns('deliver').toFixed(0)} ns`,
      `${(ns('deliver') / batch).toFixed(2)} ns per event, for all the connections together`,
    ],
  ],
)}
`);
