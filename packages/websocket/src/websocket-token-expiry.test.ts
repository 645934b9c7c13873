import { waitFor } from '@herald/testkit';
import { expect, it } from 'vitest';
import { ProtocolClient, startWsApp } from './testing/protocol-client.js';

it('closes with 4401 when a stream token expires, unless a fresh one was sent in time', async () => {
  const ws = await startWsApp();
  const clients: ProtocolClient[] = [];
  try {
    const key = await ws.app.consumerKey('acme');
    const streamToken = async (ttl: number) => (await ws.app.api('POST', '/v1/stream-tokens', { ttl }, key)).body as { token: string; expiresAt: string };
    const shortLived = await streamToken(10);
    const expiring = await ProtocolClient.connect(ws.url, { token: shortLived.token });
    const refreshed = await ProtocolClient.connect(ws.url, { token: shortLived.token });
    clients.push(expiring, refreshed);
    await refreshed.subscribe({ id: 'r', types: ['order.*'] });
    const longer = await streamToken(600);
    refreshed.send({ type: 'auth', token: longer.token });
    await refreshed.next('ready', (message) => message.expiresAt === longer.expiresAt);

    const closed = await expiring.closed;
    expect(closed).toEqual({ code: 4401, reason: 'the stream token expired: send auth with a new token before it does' });
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(shortLived.expiresAt) - 50);

    const { event } = await ws.app.herald.publish({ type: 'order.created', data: { n: 1 } });
    await waitFor(() => refreshed.events('r').some((received) => received.id === event.id), 'the refreshed connection to receive');
    expect(refreshed.closedWith).toBeUndefined();
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await ws.close();
  }
}, 30_000);
