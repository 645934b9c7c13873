import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { generateSecret } from '@herald/webhook/signing';
import { websocket } from '@herald/websocket';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { closedPort, jsonLines, killAll, runCli, startCli } from './cli-process.test-support.js';

/** A local webhook endpoint that verifies every request with the `standardwebhooks` package. */
interface Receiver {
  url: string;
  /** The verified requests' envelopes, in the order they came. */
  verified: { id: string; seq: number; type: string }[];
  /** Requests that did not verify. */
  refused: string[];
  /** Answers with this status instead of 204, or drops the connection, while it returns one. */
  failWith?: (body: { seq: number }, attempt: number) => number | 'drop' | undefined;
  close(): Promise<void>;
}

async function startReceiver(secret: () => string): Promise<Receiver> {
  const attempts = new Map<number, number>();
  const receiver: Receiver = { url: '', verified: [], refused: [], close: async () => {} };
  const server: Server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      let envelope: { id: string; seq: number; type: string };
      try {
        envelope = new Webhook(secret()).verify(body, request.headers as IncomingHttpHeaders & Record<string, string>) as typeof envelope;
      } catch (error) {
        receiver.refused.push(String(error));
        return void response.writeHead(401).end();
      }
      const attempt = (attempts.get(envelope.seq) ?? 0) + 1;
      attempts.set(envelope.seq, attempt);
      const failure = receiver.failWith?.(envelope, attempt);
      if (failure === 'drop') return void request.socket.destroy();
      if (failure) return void response.writeHead(failure).end();
      receiver.verified.push({ id: envelope.id, seq: envelope.seq, type: envelope.type });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`;
  receiver.close = () => new Promise((resolve) => server.close(() => resolve()));
  return receiver;
}

let app: TestApp;
beforeEach(async () => {
  // testkit's event types: order.created and invoice.paid among them, with data { n: number }.
  app = await startTestApp([websocket()]);
  onTestFinished(() => app.close());
});
afterEach(killAll);

function publish(type: 'order.created' | 'invoice.paid', n: number) {
  return app.herald.publish({ type, data: { n } });
}

describe('herald listen --forward-to', () => {
  it('forwards 500 events, each verified by standardwebhooks, none missing after the listener is killed and restarted with --subscription', async () => {
    const consumerKey = await app.consumerKey('acme');
    const { body: subscription } = await app.api('POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.*'] }, consumerKey);
    let secret = '';
    const receiver = await startReceiver(() => secret);
    onTestFinished(() => receiver.close());
    const args = ['listen', '--forward-to', receiver.url, '--subscription', subscription.id, '--url', app.baseUrl, '--key', consumerKey];

    const first = startCli(args);
    secret = (await first.waitFor(/Webhook signing secret: (whsec_\S+)/, 'stderr'))[1] as string;
    for (let n = 1; n <= 250; n++) await publish('order.created', n);
    await waitFor(() => receiver.verified.length >= 100, '100 forwarded events');
    first.child.kill('SIGKILL');
    await first.exited;
    // Published while no listener runs: the subscription's cursor keeps them.
    for (let n = 251; n <= 500; n++) await publish('order.created', n);
    await publish('invoice.paid', 0);

    const second = startCli([...args, '--secret', secret]);
    await waitFor(() => new Set(receiver.verified.map((event) => event.seq)).size === 500, 'all 500 events forwarded', 45_000);
    second.child.kill('SIGINT');
    expect((await second.exited).code).toBe(0);

    expect(receiver.refused).toEqual([]);
    const seqs = [...new Set(receiver.verified.map((event) => event.seq))].sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 500 }, (_, index) => index + 1));
    expect(receiver.verified.every((event) => event.type === 'order.created')).toBe(true);
    // One line per attempt: time, seq, type, status and latency.
    expect(second.stdout()).toMatch(/^\d\d:\d\d:\d\d {2}#500 {2}order\.created {2}→ 204 {2}\d+ ms$/m);
  }, 90_000);

  it('retries a local endpoint that answers 5xx or is down, reports each attempt as a JSON line, and goes on with the stream', async () => {
    const receiver = await startReceiver(() => secret);
    onTestFinished(() => receiver.close());
    // The first order event fails twice (503, then no answer at all), then gets through.
    receiver.failWith = ({ seq }, attempt) => (seq !== 1 ? undefined : attempt === 1 ? 503 : attempt === 2 ? 'drop' : undefined);
    let secret = '';
    const listener = startCli(['listen', '--forward-to', receiver.url, '--types', 'order.*', '--json', '--url', app.baseUrl, '--key', app.adminKey]);
    const ready = JSON.parse((await listener.waitFor(/^\{"ready":true.*$/m, 'stdout'))[0]) as { secret: string; source: string; forwardTo: string };
    secret = ready.secret;
    expect(ready).toMatchObject({ source: 'order.*', forwardTo: receiver.url, secret: expect.stringMatching(/^whsec_/) });

    await publish('order.created', 1);
    await publish('invoice.paid', 2);
    await publish('order.created', 3);
    await waitFor(() => receiver.verified.length === 2, 'both order events');
    listener.child.kill('SIGTERM');
    expect((await listener.exited).code).toBe(0);

    const lines = jsonLines(listener.stdout()).slice(1);
    expect(lines.map(({ seq, type, attempt, status, outcome }) => ({ seq, type, attempt, status, outcome }))).toEqual([
      { seq: 1, type: 'order.created', attempt: 1, status: 503, outcome: 'retrying' },
      { seq: 1, type: 'order.created', attempt: 2, status: undefined, outcome: 'retrying' },
      { seq: 1, type: 'order.created', attempt: 3, status: 204, outcome: 'delivered' },
      { seq: 3, type: 'order.created', attempt: 1, status: 204, outcome: 'delivered' },
    ]);
    expect(lines[0]).toMatchObject({ retryIn: 1000, latency: expect.any(Number), time: expect.any(String), id: expect.stringMatching(/^evt_/) });
    expect(lines[1]).toMatchObject({ retryIn: 2000, error: expect.any(String) });
  });

  it('says which events retention pruned before a subscription resumed, in text and as JSON, then forwards what the log kept', async () => {
    // At most 6 events in the log: of 20, retention prunes #1 to #14 within a second.
    const pruned = await startTestApp([websocket()], { logMaxEvents: 6 });
    onTestFinished(() => pruned.close());
    const consumerKey = await pruned.consumerKey('acme');
    const subscribe = async () => (await pruned.api('POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.*'] }, consumerKey)).body.id as string;
    const [text, json] = [await subscribe(), await subscribe()];
    for (let n = 1; n <= 20; n++) await pruned.herald.publish({ type: 'order.created', data: { n } });
    await waitFor(async () => (await pruned.api('GET', '/v1/events?limit=1')).body.oldest === 15, 'retention to prune #1 to #14');
    const secret = generateSecret();
    const receiver = await startReceiver(() => secret);
    onTestFinished(() => receiver.close());

    const listen = (subscription: string, ...flags: string[]) =>
      startCli(['listen', '--forward-to', receiver.url, '--subscription', subscription, '--secret', secret, ...flags, '--url', pruned.baseUrl, '--key', consumerKey]);
    const listeners = [listen(text), listen(json, '--json')];
    await waitFor(() => receiver.verified.length === 12, 'events #15 to #20, for each listener', 30_000);
    for (const listener of listeners) listener.child.kill('SIGINT');
    await Promise.all(listeners.map((listener) => listener.exited));

    // Said after the line that says the stream is ready, which stays the first JSON line.
    expect(listeners[0]?.stderr()).toMatch(
      /^Ready\. .*\nWebhook signing secret: .*\nLost to retention: events #1–#14 were pruned before this stream got them \(any a longer retention of their type kept still arrive\); going on from #15\n$/,
    );
    const lines = jsonLines(listeners[1]?.stdout() ?? '');
    expect(lines.slice(0, 2)).toEqual([
      expect.objectContaining({ ready: true }),
      { time: expect.any(String), reset: true, reason: 'expired', after: 0, oldest: 15 },
    ]);
    expect(lines.filter((line) => line.outcome === 'delivered').map((line) => line.seq)).toEqual([15, 16, 17, 18, 19, 20]);
  });

  it('reports a refused key and an unknown subscription in one line on stderr, with exit code 1', async () => {
    const forward = ['--forward-to', `http://127.0.0.1:${await closedPort()}/webhooks`];
    const [refused, unknown] = await Promise.all([
      runCli(['listen', ...forward, '--url', app.baseUrl, '--key', 'hk_wrong']),
      runCli(['listen', ...forward, '--subscription', 'sub_missing', '--url', app.baseUrl, '--key', app.adminKey]),
    ]);
    expect(refused).toEqual({ code: 1, stdout: '', stderr: 'herald: the key was refused: The API key is not valid\n' });
    expect(unknown).toEqual({ code: 1, stdout: '', stderr: 'herald: no subscription "sub_missing" for this consumer\n' });
  });

  it('reports a pattern the server refuses with its whole message, which a WebSocket close reason would cut', async () => {
    const forward = ['--forward-to', `http://127.0.0.1:${await closedPort()}/webhooks`];
    expect(await runCli(['listen', ...forward, '--types', 'order.*,a..b', '--url', app.baseUrl, '--key', app.adminKey])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'herald: The request query is not valid: types.1: must be an event type, or a pattern with "*" for one segment and a final "**" for one or more (422)\n',
    });
  });
});
