import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@herald/testkit';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningDemo, startDemo } from './demo-server.js';
import { WebhookInbox } from './webhook-inbox.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The inbox's routes on a server of their own, on loopback. */
async function serve(inbox: WebhookInbox): Promise<string> {
  const app = express();
  app.use(inbox.router());
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    inbox.close();
    return new Promise((done) => server.close(done));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Reads the inbox's stream until it has sent `count` entries; their SSE ids. */
async function streamedIds(url: string, count: number, headers: Record<string, string> = {}): Promise<string[]> {
  const stop = new AbortController();
  const response = await fetch(url, { headers, signal: stop.signal });
  expect(response.status).toBe(200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  const ids = () => [...text.matchAll(/^id: (.+)$/gm)].map((match) => match[1] as string);
  while (ids().length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  stop.abort();
  return ids();
}

/** Posts a request no subscription signed: the inbox keeps it, refused (401). */
const postUnsigned = (url: string, n: number) => fetch(`${url}/demo/inbox`, { method: 'POST', body: `{"n":${n}}` });

describe('the webhook inbox', () => {
  it('names each request by its start and number, and resumes a stream after the id it is given, or from the first for an id of another start', async () => {
    const first = new WebhookInbox(async () => []);
    const firstUrl = await serve(first);
    for (const n of [1, 2, 3]) expect((await postUnsigned(firstUrl, n)).status).toBe(401);
    const ids = first.entries.map(({ id }) => id);
    const [start] = (ids[0] ?? '').split('-');
    expect(ids).toEqual([1, 2, 3].map((n) => `${start}-${n}`));

    // The EventSource's own reconnection sends Last-Event-ID; a new EventSource of the page, ?after=.
    expect(await streamedIds(`${firstUrl}/demo/inbox/stream`, 2, { 'last-event-id': ids[0] as string })).toEqual(ids.slice(1));
    expect(await streamedIds(`${firstUrl}/demo/inbox/stream?after=${ids[1]}`, 1)).toEqual(ids.slice(2));
    expect(await streamedIds(`${firstUrl}/demo/inbox/stream?after=nonsense`, 3)).toEqual(ids);

    // A restart: another start, whose numbers begin at 1 again, under another name.
    await waitFor(() => Date.now() > Number(start), 'the clock to move past the first start');
    const second = new WebhookInbox(async () => []);
    const secondUrl = await serve(second);
    expect((await postUnsigned(secondUrl, 4)).status).toBe(401);
    const [received] = second.entries.map(({ id }) => id);
    expect(received).toMatch(/^\d+-1$/);
    expect(ids).not.toContain(received);
    expect(await streamedIds(`${secondUrl}/demo/inbox/stream`, 1, { 'last-event-id': ids[2] as string })).toEqual([received]);
  });

  it('takes no more webhooks once closed: 503 with Retry-After, so that they are delivered again', async () => {
    const inbox = new WebhookInbox(async () => []);
    const url = await serve(inbox);
    inbox.close();
    const refused = await postUnsigned(url, 1);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await fetch(`${url}/demo/inbox/stream`)).status).toBe(503);
    expect(inbox.entries).toEqual([]);
  });
});

describe('the demo across a restart', () => {
  it('keeps its inbox subscription at the same address: a webhook the inbox refused while the demo stopped arrives after the next start, once', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'herald-demo-inbox-'));
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
    const env = { ...process.env, HERALD_DATABASE: join(directory, 'herald.db'), HERALD_LOG_LEVEL: 'error', HERALD_ADMIN_KEY: '' };
    const start = async (port: number): Promise<RunningDemo> => {
      const demo = await startDemo({ env, port, handleSignals: false });
      cleanups.push(() => demo.close());
      return demo;
    };
    const first = await start(0);
    const session = (await (await fetch(`${first.url}/demo/session`)).json()) as { consumerKey: string };
    const asConsumer = async <T>(path: string) => (await (await fetch(`${first.url}${path}`, { headers: { authorization: `Bearer ${session.consumerKey}` } })).json()) as T;
    const [subscription] = (await asConsumer<{ data: { id: string }[] }>('/v1/subscriptions?transport=webhook')).data;

    // As while the demo stops: the inbox refuses, Herald keeps the delivery for a later attempt.
    first.inbox.close();
    const { event } = await first.herald.publish({ type: 'order.shipped', data: { orderId: 'ord_stopping', carrier: 'DHL' } });
    const attempts = async () => {
      const { data } = await asConsumer<{ data: { eventSeq: number; attempts: { responseStatus: number | null }[] }[] }>(`/v1/subscriptions/${subscription?.id}/deliveries`);
      return data.find((delivery) => delivery.eventSeq === event.seq)?.attempts ?? [];
    };
    await waitFor(async () => (await attempts()).some((attempt) => attempt.responseStatus === 503), 'the refused attempt');
    await first.close();

    const second = await start(Number(new URL(first.url).port));
    await waitFor(() => second.inbox.entries.some((entry) => entry.event?.seq === event.seq), 'the webhook delivered again', 20_000);
    const arrived = second.inbox.entries.filter((entry) => entry.event?.seq === event.seq);
    expect(arrived).toHaveLength(1);
    expect(arrived[0]).toMatchObject({ verified: true, subscriptionId: subscription?.id });
  }, 60_000);
});
