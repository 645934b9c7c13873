import type { HeraldEvent } from '@herald/core';
import { waitFor } from '@herald/testkit';
import { EventSource } from 'eventsource';
import { afterEach, expect, it } from 'vitest';
import { collectEvents, eventSourceWithKey, opened, type StreamApp, startStreamApp } from './stream-app.test-support.js';

let app: StreamApp | undefined;
const sources: EventSource[] = [];
afterEach(async () => {
  for (const source of sources.splice(0)) source.close();
  await app?.close();
  app = undefined;
});

function open(url: string, key?: string): EventSource {
  const source = key === undefined ? new EventSource(url) : eventSourceWithKey(url, key);
  sources.push(source);
  return source;
}

/** The data of every `end` frame the source receives. */
function ends(source: EventSource): { reason: string; message: string }[] {
  const received: { reason: string; message: string }[] = [];
  source.addEventListener('end', (message) => received.push(JSON.parse(message.data)));
  return received;
}

it('ends a stream when its stream token expires, with an `end` frame that says why (issue 13)', async () => {
  app = await startStreamApp({ retry: 100 });
  const key = await app.consumerKey('acme');
  const issued = (await app.api('POST', '/v1/stream-tokens', { ttl: 10 }, key)).body as { token: string; expiresAt: string };
  const url = `${app.baseUrl}/v1/stream?types=order.*&access_token=${issued.token}`;
  const expiring = open(url);
  const events = collectEvents(expiring, ['order.created']);
  const ended = ends(expiring);
  const failures: (number | undefined)[] = [];
  expiring.addEventListener('error', (error) => failures.push((error as { code?: number }).code));
  // A stream opened with an API key has nothing to expire.
  const byKey = open(`${app.baseUrl}/v1/stream?types=order.*`, key);
  const byKeyEvents = collectEvents(byKey, ['order.created']);
  await Promise.all([opened(expiring), opened(byKey)]);

  const { event: before } = await app.herald.publish({ type: 'order.created', data: { n: 1 } });
  await waitFor(() => events.length === 1, 'the event before expiry');

  await waitFor(() => ended.length === 1, 'the end frame', 15_000);
  expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(issued.expiresAt) - 50);
  expect(ended[0]).toEqual({ reason: 'token-expired', message: 'the stream token expired: open the stream again with a new token and lastEventId' });
  // A client that ignores the frame reconnects once, gets 401 for the dead token, and stops for good.
  await waitFor(() => expiring.readyState === EventSource.CLOSED, 'the EventSource to give up');
  expect(failures.at(-1)).toBe(401);
  await waitFor(() => app?.sse.connections === 1, 'only the stream opened with the key to stay open');

  // What a client should do instead: open it again with a new token, from the last event it received.
  const { event: missed } = await app.herald.publish({ type: 'order.created', data: { n: 2 } });
  const fresh = (await app.api('POST', '/v1/stream-tokens', { ttl: 60 }, key)).body as { token: string };
  const reopened = open(`${app.baseUrl}/v1/stream?types=order.*&access_token=${fresh.token}&lastEventId=${before.seq}`);
  const resumed = collectEvents(reopened, ['order.created']);
  await waitFor(() => resumed.length === 1, 'the event published while it was away');
  expect(resumed.map((event: HeraldEvent) => event.id)).toEqual([missed.id]);
  await waitFor(() => byKeyEvents.length === 2, 'the stream opened with the key to go on');
  expect(byKey.readyState).toBe(EventSource.OPEN);
}, 30_000);
