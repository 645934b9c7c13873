import type { Transport, TransportContext } from '@herald/core';
import { sse } from '@herald/sse';
import { startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { websocket } from '@herald/websocket';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';

/** A push transport that reports through the metrics seam what a real one would: two deliveries and a backlog of each scope. */
function probeTransport(): Transport & { context?: TransportContext } {
  const probe: Transport & { context?: TransportContext } = {
    name: 'probe',
    kind: 'push',
    async start(context) {
      probe.context = context;
      context.metrics.backlog(() => 7);
      context.metrics.backlog(() => 5, 'shared');
    },
    async stop() {},
  };
  return probe;
}

let app: TestApp;
const probe = probeTransport();

beforeAll(async () => {
  app = await startTestApp([websocket(), sse(), probe]);
});
afterAll(() => app?.close());

/** `name{labels} value` lines of the Prometheus text format, by series. */
async function scrape(from: TestApp = app): Promise<Map<string, number>> {
  const response = await fetch(`${from.baseUrl}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const series = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^([a-z_:]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) series.set(match[1] as string, Number(match[2]));
  }
  return series;
}

async function value(series: string): Promise<number | undefined> {
  return (await scrape()).get(series);
}

describe('/metrics', () => {
  it('is served without a key, with the process metrics', async () => {
    const series = await scrape();
    expect(series.get('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(series.has('process_cpu_user_seconds_total')).toBe(true);
    expect(series.get('herald_connected_clients{transport="websocket"}')).toBe(0);
    // Clients do not connect to a push transport: no series that would always say 0.
    expect([...series.keys()].filter((name) => name.startsWith('herald_connected_clients'))).toEqual([
      'herald_connected_clients{transport="websocket"}',
      'herald_connected_clients{transport="sse"}',
    ]);
  });

  it('counts the requests the rate limits refuse, by limit, and the credentials refused', async () => {
    const limited = await startTestApp([], { rateLimit: { requests: 2, window: 60 }, authFailureLimit: { requests: 2, window: 60 } });
    onTestFinished(() => limited.close());
    const key = await limited.consumerKey('acme');
    const statuses = async (credential: string, times: number) => {
      const answers: number[] = [];
      for (let n = 0; n < times; n++) answers.push((await limited.api('GET', '/v1/subscriptions', undefined, credential)).status);
      return answers;
    };
    expect(await statuses(key, 3)).toEqual([200, 200, 429]);
    expect(await statuses(`hk_0123456789abcdef0123_${'0'.repeat(64)}`, 3)).toEqual([401, 401, 429]);
    const series = await scrape(limited);
    expect(series.get('herald_rate_limited_total{limit="key"}')).toBe(1);
    expect(series.get('herald_rate_limited_total{limit="auth-failures"}')).toBe(1);
    // A limit that refused nothing has its series all the same, at 0, for an alert on its rate.
    expect(series.get('herald_rate_limited_total{limit="admin"}')).toBe(0);
    // The third wrong key was refused unlooked at: not a failure of its own.
    expect(series.get('herald_authentication_failures_total')).toBe(2);
  });

  it('counts the events that enter the log, by type', async () => {
    const before = (await value('herald_events_published_total{type="order.created"}')) ?? 0;
    for (const n of [1, 2]) expect((await app.api('POST', '/v1/events', { type: 'order.created', data: { n } })).status).toBe(202);
    expect((await app.api('POST', '/v1/events', { type: 'invoice.paid', data: { n: 3 } })).status).toBe(202);
    // The same id again is not a new event.
    const again = await app.api('POST', '/v1/events', { type: 'invoice.paid', data: { n: 3 }, id: 'once' });
    expect((await app.api('POST', '/v1/events', { type: 'invoice.paid', data: { n: 3 }, id: 'once' })).status).toBe(200);
    expect(again.status).toBe(202);
    await waitFor(async () => (await value('herald_events_published_total{type="order.created"}')) === before + 2, 'two order.created counted');
    expect(await value('herald_events_published_total{type="invoice.paid"}')).toBe(2);
    expect(await value('herald_log_latest_seq')).toBe(app.herald.bus.latest);
  });

  it('counts connected WebSocket and SSE clients while they are connected', async () => {
    const key = await app.consumerKey('metrics-watcher');
    const socket = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/ws`, 'herald.v1', { headers: { authorization: `Bearer ${key}` } });
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const stream = new AbortController();
    const response = await fetch(`${app.baseUrl}/v1/stream?types=order.*`, { headers: { authorization: `Bearer ${key}` }, signal: stream.signal });
    expect(response.status).toBe(200);
    await waitFor(async () => (await value('herald_connected_clients{transport="websocket"}')) === 1, 'one WebSocket client');
    expect(await value('herald_connected_clients{transport="sse"}')).toBe(1);

    socket.close();
    stream.abort();
    await waitFor(async () => (await value('herald_connected_clients{transport="websocket"}')) === 0, 'the WebSocket client gone');
    await waitFor(async () => (await value('herald_connected_clients{transport="sse"}')) === 0, 'the SSE client gone');
  });

  it('counts the events written to SSE streams, with their latency', async () => {
    const key = await app.consumerKey('sse-metrics');
    const stream = new AbortController();
    const response = await fetch(`${app.baseUrl}/v1/stream?types=invoice.paid`, { headers: { authorization: `Bearer ${key}` }, signal: stream.signal });
    expect(response.status).toBe(200);
    const before = (await value('herald_deliveries_total{transport="sse",outcome="delivered"}')) ?? 0;
    await app.api('POST', '/v1/events', { type: 'invoice.paid', data: { n: 10 } });
    await app.api('POST', '/v1/events', { type: 'order.created', data: { n: 11 } });
    await app.api('POST', '/v1/events', { type: 'invoice.paid', data: { n: 12 } });
    await waitFor(async () => (await value('herald_deliveries_total{transport="sse",outcome="delivered"}')) === before + 2, 'two SSE deliveries counted');
    expect(await value('herald_delivery_latency_seconds_count{transport="sse"}')).toBe(before + 2);
    stream.abort();
  });

  it('counts the events sent on WebSocket connections, with their latency', async () => {
    const key = await app.consumerKey('ws-metrics');
    const socket = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/ws`, 'herald.v1', { headers: { authorization: `Bearer ${key}` } });
    const received: unknown[] = [];
    let subscribed = false;
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.type === 'ready') socket.send(JSON.stringify({ type: 'subscribe', id: 's1', types: ['user.*'] }));
      if (message.type === 'subscribed') subscribed = true;
      if (message.type === 'event') received.push(message);
    });
    await new Promise((resolve) => socket.once('open', resolve));
    await waitFor(async () => (await value('herald_connected_clients{transport="websocket"}')) === 1, 'the WebSocket client');
    const before = (await value('herald_deliveries_total{transport="websocket",outcome="delivered"}')) ?? 0;
    await waitFor(() => subscribed, 'the subscription confirmed');
    await app.api('POST', '/v1/events', { type: 'user.signed_up', data: { n: 1 } });
    await app.api('POST', '/v1/events', { type: 'order.created', data: { n: 2 } });
    await waitFor(() => received.length === 1, 'the event on the socket');
    await waitFor(async () => (await value('herald_deliveries_total{transport="websocket",outcome="delivered"}')) === before + 1, 'one WebSocket delivery counted');
    socket.close();
  });

  it('shows what transports report: deliveries by outcome, the latency histogram, their backlog', async () => {
    const metrics = probe.context?.metrics;
    if (!metrics) throw new Error('the probe transport did not start');
    metrics.delivered('delivered', 120);
    metrics.delivered('failed', 4);
    // Counted, but a latency that is not a time is left out of the histogram.
    metrics.delivered('dropped', Number.NaN);
    const series = await scrape();
    expect(series.get('herald_deliveries_total{transport="probe",outcome="dropped"}')).toBe(1);
    expect(series.get('herald_delivery_latency_seconds_bucket{le="+Inf",transport="probe"}')).toBe(2);
    expect(series.get('herald_deliveries_total{transport="probe",outcome="delivered"}')).toBe(1);
    expect(series.get('herald_deliveries_total{transport="probe",outcome="failed"}')).toBe(1);
    expect(series.get('herald_delivery_latency_seconds_count{transport="probe"}')).toBe(2);
    expect(series.get('herald_delivery_latency_seconds_bucket{le="0.005",transport="probe"}')).toBe(1);
    expect(series.get('herald_delivery_latency_seconds_bucket{le="0.1",transport="probe"}')).toBe(1);
    expect(series.get('herald_delivery_latency_seconds_bucket{le="0.25",transport="probe"}')).toBe(2);
    expect(series.get('herald_delivery_latency_seconds_sum{transport="probe"}')).toBeCloseTo(0.124, 6);
    expect(series.get('herald_transport_backlog{transport="probe",scope="node"}')).toBe(7);
    expect(series.get('herald_transport_backlog{transport="probe",scope="shared"}')).toBe(5);
  });
});
