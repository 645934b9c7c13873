import type { HeraldEvent } from '@herald/core';
import { waitFor } from '@herald/testkit';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { closedAfterEach, type ProtocolClient } from './testing/protocol-client.js';

const opened = closedAfterEach();

/** Every frame the socket receives, as ws reads them: one message per frame, text only. */
function framesOf(ws: WebSocket): { text: string[]; binary: number } {
  const seen = { text: [] as string[], binary: 0 };
  ws.on('message', (data, isBinary) => (isBinary ? (seen.binary += 1) : seen.text.push(data.toString())));
  return seen;
}

describe('a burst fanned out with one Buffer per distinct batch', () => {
  it('gives each client exactly its events, in order, whatever its types, filter or subscription id', async () => {
    const ws = await opened.start();
    const key = await ws.app.consumerKey('acme');
    const connect = async (subscribe: Record<string, unknown>) => {
      const client = await opened.connect(ws.url, { token: key });
      const frames = framesOf(client.ws);
      await client.subscribe({ id: 's', ...subscribe });
      return { client, frames };
    };
    // Several of each kind, so that the same batch goes to several sockets.
    const all = await Promise.all([1, 2, 3].map(() => connect({ types: ['order.*'] })));
    const otherId = await Promise.all([1, 2].map(() => connect({ id: 'x', types: ['order.*'] })));
    const filtered = await Promise.all([1, 2].map(() => connect({ types: ['order.*'], filter: { 'data.n': { $gte: 10 } } })));
    const shipped = await connect({ types: ['order.shipped'] });
    // A second subscription on one socket: its own frames, in its own batch.
    const two = await connect({ types: ['order.created'] });
    await two.client.subscribe({ id: 't', types: ['order.shipped'] });

    const inputs = Array.from({ length: 40 }, (_, n) => ({ type: n % 3 === 0 ? 'order.shipped' : 'order.created', data: { n } }));
    const published = (await ws.app.herald.publishMany(inputs as never)).map(({ event }) => event);
    const matching = (test: (event: HeraldEvent) => boolean) => published.filter(test);
    const expectEvents = async (client: ProtocolClient, id: string, expected: HeraldEvent[]) => {
      await waitFor(() => client.events(id).length >= expected.length, `${expected.length} events on ${id}`);
      expect(client.events(id)).toEqual(expected);
    };
    for (const { client } of all) await expectEvents(client, 's', published);
    for (const { client } of otherId) await expectEvents(client, 'x', published);
    for (const { client } of filtered) await expectEvents(client, 's', matching((event) => (event.data as { n: number }).n >= 10));
    await expectEvents(shipped.client, 's', matching((event) => event.type === 'order.shipped'));
    await expectEvents(two.client, 's', matching((event) => event.type === 'order.created'));
    await expectEvents(two.client, 't', matching((event) => event.type === 'order.shipped'));
    // Each event in a frame of its own, whole and in text.
    for (const { frames } of [...all, ...otherId, ...filtered, shipped, two]) {
      expect(frames.binary).toBe(0);
      expect(frames.text.every((text) => JSON.parse(text).type !== 'event' || typeof JSON.parse(text).event.seq === 'number')).toBe(true);
    }
  });

  it('serves a client that offers permessage-deflate, uncompressed, and it reads every frame', async () => {
    const ws = await opened.start();
    const key = await ws.app.consumerKey('acme');
    const socket = new WebSocket(ws.url, 'herald.v1', { perMessageDeflate: true, headers: { authorization: `Bearer ${key}` } });
    const client = await new Promise<ProtocolClient>((resolve, reject) => {
      const messages: any[] = [];
      socket.on('message', (data) => messages.push(JSON.parse(data.toString())));
      socket.once('error', reject);
      socket.once('open', () => resolve({ messages } as unknown as ProtocolClient));
    });
    await waitFor(() => client.messages.some((message) => message.type === 'ready'), 'ready');
    expect(socket.extensions).toBe('');
    socket.send(JSON.stringify({ type: 'subscribe', id: 's', types: ['order.*'] }));
    await waitFor(() => client.messages.some((message) => message.type === 'subscribed'), 'subscribed');
    const published = (await ws.app.herald.publishMany(Array.from({ length: 20 }, (_, n) => ({ type: 'order.created', data: { n } })) as never)).map(
      ({ event }) => event,
    );
    await waitFor(() => client.messages.filter((message) => message.type === 'event').length >= 20, 'the events');
    expect(client.messages.filter((message) => message.type === 'event').map((message) => message.event)).toEqual(published);
    socket.close();
  });
});
