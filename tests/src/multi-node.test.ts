import { randomBytes } from 'node:crypto';
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  api,
  checkMachineRedis,
  exactlyOnceInOrder,
  freshDatabase,
  machineRedisUrl,
  type NodeProcess,
  type Published,
  publishMany,
  socketClient,
  startNodes,
  streamClient,
  waitFor,
  type WebhookReceiver,
  webhookReceiver,
} from './multi-node-cluster.js';

/**
 * Three identical nodes as separate processes on the machine's PostgreSQL (a fresh database, dropped
 * afterwards) and Redis (channels under a prefix of this run's own).
 */
describe('three Herald nodes on PostgreSQL and Redis', () => {
  const adminKey = `admin-${randomBytes(16).toString('hex')}`;
  const nodes: NodeProcess[] = [];
  const receivers: WebhookReceiver[] = [];
  // Generous: on a loaded machine an attempt that times out is retried, and that second send would be a duplicate.
  const webhookTimeout = 10_000;
  const webhookLease = 15_000;
  let database: Awaited<ReturnType<typeof freshDatabase>> | undefined;

  beforeAll(async () => {
    await checkMachineRedis();
    database = await freshDatabase();
    const env = {
      HERALD_ADMIN_KEY: adminKey,
      MULTI_NODE_DATABASE: database.url,
      MULTI_NODE_REDIS: machineRedisUrl,
      MULTI_NODE_REDIS_PREFIX: `multi-node-${process.pid}-${randomBytes(4).toString('hex')}:`,
      MULTI_NODE_WEBHOOK_TIMEOUT: String(webhookTimeout),
      MULTI_NODE_WEBHOOK_LEASE: String(webhookLease),
    };
    nodes.push(...(await startNodes([['A', env], ['B', env], ['C', env]])));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await Promise.all(receivers.map((receiver) => receiver.close()));
    await database?.drop();
  }, 90_000);

  it('WebSocket and SSE clients on C receive what A and B publish concurrently, each once, in seq order', async () => {
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    // A key made on A works on C: the keys live in the shared store.
    const made = await api(a, adminKey, 'POST', '/v1/keys', { role: 'consumer', consumer: 'acme' });
    expect(made.status).toBe(201);
    const key = made.body.key as string;
    const socket = await socketClient(c, key, ['order.*']);
    const stream = await streamClient(c, key, ['order.*']);
    try {
      const [fromA, fromB] = await Promise.all([publishMany(a, adminKey, { count: 300 }), publishMany(b, adminKey, { count: 300 })]);
      const published = [...fromA, ...fromB];
      // They did publish at once: their seqs interleave.
      const maxA = Math.max(...fromA.map((event) => event.seq));
      const maxB = Math.max(...fromB.map((event) => event.seq));
      expect(fromA.some((event) => event.seq < maxB) && fromB.some((event) => event.seq < maxA)).toBe(true);

      await waitFor(() => socket.events.length >= published.length, 'every event over the WebSocket on C');
      await waitFor(() => stream.events.length >= published.length, 'every event over SSE on C');
      // Nothing more comes after a pause: no late duplicates.
      await new Promise((done) => setTimeout(done, 1_500));
      expect(exactlyOnceInOrder(socket.events, published)).toEqual([]);
      expect(exactlyOnceInOrder(stream.events, published)).toEqual([]);
      expect(socket.events.length).toBe(published.length);
      expect(stream.events.length).toBe(published.length);
    } finally {
      socket.close();
      stream.close();
    }
    for (const node of nodes) expect(node.errors).not.toMatch(/error/i);
  }, 120_000);

  it('a durable subscription deleted on A is said to its WebSocket and SSE clients on C, through Redis', async () => {
    const [a, , c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const key = (await api(a, adminKey, 'POST', '/v1/keys', { role: 'consumer', consumer: 'deleted' })).body.key as string;
    const overWebSocket = (await api(a, key, 'POST', '/v1/subscriptions', { transport: 'websocket', types: ['order.*'] })).body.id as string;
    const overSse = (await api(a, key, 'POST', '/v1/subscriptions', { transport: 'sse', types: ['order.*'] })).body.id as string;
    const socket = new WebSocket(`${c.url.replace('http', 'ws')}/v1/ws`, 'herald.v1', { headers: { authorization: `Bearer ${key}` } });
    const messages: { type: string; id?: string; code?: string }[] = [];
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString());
      messages.push(message);
      if (message.type === 'ready') socket.send(JSON.stringify({ type: 'subscribe', id: 'd', subscription: overWebSocket }));
    });
    const source = new EventSource(`${c.url}/v1/stream?subscription=${overSse}`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${key}` } }),
    });
    const opened = new Promise<void>((done) => source.addEventListener('open', () => done(), { once: true }));
    const ends: { reason: string }[] = [];
    source.addEventListener('end', (message) => ends.push(JSON.parse(message.data)));
    try {
      await waitFor(() => messages.some((message) => message.type === 'subscribed'), 'the WebSocket to attach on C');
      await opened;
      for (const id of [overWebSocket, overSse]) expect((await api(a, key, 'DELETE', `/v1/subscriptions/${id}`)).status).toBe(204);
      await waitFor(() => messages.some((message) => message.type === 'error' && message.id === 'd'), 'the WebSocket on C to be told');
      expect(messages.filter((message) => message.type === 'error')).toEqual([expect.objectContaining({ id: 'd', code: 'subscription-not-found' })]);
      await waitFor(() => ends.length > 0, 'the SSE stream on C to end');
      expect(ends).toEqual([expect.objectContaining({ reason: 'deleted' })]);
      expect(socket.readyState).toBe(WebSocket.OPEN);
    } finally {
      socket.close();
      source.close();
    }
  }, 60_000);

  /** A webhook subscription to `types` on a receiver of its own, created through node A. */
  async function subscribe(types: string[], delay: number, config: object = {}): Promise<{ receiver: WebhookReceiver; subscriptionId: string }> {
    const receiver = await webhookReceiver(delay);
    receivers.push(receiver);
    const created = await api(nodes[0] as NodeProcess, adminKey, 'POST', '/v1/subscriptions', {
      transport: 'webhook',
      types,
      config: { url: receiver.url, ...config },
      consumer: 'acme',
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return { receiver, subscriptionId: created.body.id as string };
  }

  const attemptsOf = (node: NodeProcess, ids: ReadonlySet<string>) => node.attempts.filter((attempt) => ids.has(attempt.deliveryId)).length;

  it('2,000 webhook events with workers on all three nodes: every one delivered, none sent twice', async () => {
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const { receiver, subscriptionId } = await subscribe(['order.paid'], 5);
    const published = (
      await Promise.all([
        publishMany(a, adminKey, { count: 667, type: 'order.paid' }),
        publishMany(b, adminKey, { count: 667, type: 'order.paid' }),
        publishMany(c, adminKey, { count: 666, type: 'order.paid' }),
      ])
    ).flat();
    expect(published.length).toBe(2_000);

    await waitFor(() => receiver.received.size >= published.length, 'every webhook delivered', 90_000);
    // A delivery sent straight from a fan-out has its row once its attempt is recorded.
    await waitFor(async () => {
      const rows = await database?.query<{ delivered: string }>(
        `select count(*) as delivered from herald_deliveries where subscription_id = '${subscriptionId}' and status = 'delivered'`,
      );
      return Number(rows?.[0]?.delivered) >= published.length;
    }, 'every delivery settled as delivered');
    const deliveries = await database?.query<{ id: string; status: string }>(
      `select id, status from herald_deliveries where subscription_id = '${subscriptionId}'`,
    );
    // A moment for a late second send to show up, had there been one.
    await new Promise((done) => setTimeout(done, 1_500));

    expect([...receiver.received.keys()].sort()).toEqual(published.map((event) => event.id).sort());
    const ids = new Set(deliveries?.map((delivery) => delivery.id));
    const sentTwice = [...receiver.received].filter(([, times]) => times.length > 1);
    const failedAttempts = nodes.flatMap((node) => node.attempts.filter((attempt) => ids.has(attempt.deliveryId) && attempt.outcome !== 'succeeded'));
    expect(sentTwice, `${failedAttempts.length} failed attempts`).toEqual([]);
    expect(receiver.requests).toBe(2_000);
    expect(deliveries?.length).toBe(2_000);
    // A node reports an attempt on its stdout once the answer is in: a little after the receiver counted the request.
    await waitFor(() => nodes.reduce((sum, node) => sum + attemptsOf(node, ids), 0) >= 2_000, 'the nodes to report their attempts');
    const perNode = nodes.map((node) => attemptsOf(node, ids));
    // Workers on all three nodes took part, and together made exactly one attempt per delivery.
    expect(perNode.every((count) => count > 0), `attempts per node: ${perNode.join(', ')}`).toBe(true);
    expect(perNode.reduce((sum, count) => sum + count, 0)).toBe(2_000);
  }, 180_000);

  it("an endpoint's rate limit holds across the three nodes, not on each", async () => {
    const rateLimit = 5;
    const { receiver, subscriptionId } = await subscribe(['order.refunded'], 0, { rateLimit });
    const published = (await Promise.all(nodes.map((node) => publishMany(node, adminKey, { count: 10, type: 'order.refunded' })))).flat();
    await waitFor(() => receiver.received.size >= published.length, 'every rate-limited webhook delivered', 60_000);

    const times = [...receiver.received.values()].map((sends) => sends[0] as number).sort((x, y) => x - y);
    // One bucket of 5 tokens refilled at 5 a second: no second sees more than 5 + 5, and 30 deliveries take (30 - 5) / 5 = 5 s.
    const busiestSecond = Math.max(...times.map((start) => times.filter((time) => time >= start && time < start + 1_000).length));
    expect(busiestSecond, `arrivals: ${times.map((time) => time - (times[0] as number)).join(', ')}`).toBeLessThanOrEqual(2 * rateLimit + 1);
    expect((times.at(-1) as number) - (times[0] as number)).toBeGreaterThanOrEqual(4_500);
    // With more than one node sending.
    const ids = new Set(
      (await database?.query<{ id: string }>(`select id from herald_deliveries where subscription_id = '${subscriptionId}'`))?.map((row) => row.id),
    );
    await waitFor(() => nodes.reduce((sum, node) => sum + attemptsOf(node, ids), 0) >= published.length, 'the nodes to report their attempts');
    const perNode = nodes.map((node) => attemptsOf(node, ids));
    expect(perNode.filter((count) => count > 0).length, `attempts per node: ${perNode.join(', ')}`).toBeGreaterThan(1);
    expect(perNode.reduce((sum, count) => sum + count, 0)).toBe(published.length);
  }, 120_000);

  it('a replay started on one node is shown on every node, refused again on any, and cancelled from another', async () => {
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    await Promise.all(nodes.map((node) => publishMany(node, adminKey, { count: 400, type: 'order.refunded' })));
    // Made after the events, so that only the replay sends them; slow, so that it waits after its first two batches of 500.
    const { receiver, subscriptionId } = await subscribe(['order.refunded'], 1_000);
    const replay = `/v1/subscriptions/${subscriptionId}/replay`;
    const started = await api(a, adminKey, 'POST', replay, { after: 0 });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    await waitFor(() => receiver.requests > 0, 'the replay under way');
    expect((await api(c, adminKey, 'GET', replay)).body).toMatchObject({ id: started.body.id, status: 'running' });
    expect(await api(b, adminKey, 'POST', replay, { after: 0 })).toMatchObject({ status: 409, body: { replay: { id: started.body.id } } });
    const cancelled = await api(b, adminKey, 'DELETE', replay);
    expect(cancelled).toMatchObject({ status: 200, body: { id: started.body.id, status: 'cancelled', error: 'cancelled by request' } });
    expect((await api(a, adminKey, 'GET', replay)).body).toMatchObject({ id: started.body.id, status: 'cancelled', position: cancelled.body.position });
    // Its deliveries go with the subscription, rather than load the nodes for the tests after.
    expect((await api(c, adminKey, 'DELETE', `/v1/subscriptions/${subscriptionId}`)).status).toBeLessThan(300);
  }, 60_000);

  it('SIGKILL of a node mid-run: its claimed deliveries are taken over after the lease, nothing is lost', async () => {
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    // A slow endpoint makes the deliveries queue up, so every worker holds as many as it may while B dies.
    const { receiver, subscriptionId } = await subscribe(['order.shipped'], 500);
    const publishing = Promise.all([
      publishMany(a, adminKey, { count: 200, type: 'order.shipped' }),
      publishMany(c, adminKey, { count: 200, type: 'order.shipped' }),
    ]);
    publishing.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
    const ours = async () =>
      new Set(
        (await database?.query<{ id: string }>(`select id from herald_deliveries where subscription_id = '${subscriptionId}'`))?.map((row) => row.id),
      );
    // What B holds: deliveries it claimed, and those its fan-outs handed it (its holds) that have no row yet.
    const heldBy = async (worker: string) =>
      (await database?.query<{ event_id: string; locked_until: string }>(
        `select event_id, locked_until from herald_deliveries where subscription_id = '${subscriptionId}' and locked_by = '${worker}' and status = 'pending'
         union all
         select e.id as event_id, h.locked_until from herald_outbox_holds h join herald_events e on e.seq > h.from_seq and e.seq <= h.to_seq
         where h.worker = '${worker}' and h.subscription_ids like '%"${subscriptionId}"%' and e.type = 'order.shipped'
           and not exists (select 1 from herald_deliveries d where d.subscription_id = '${subscriptionId}' and d.event_seq = e.seq)`,
      )) ?? [];
    const holding = async () => (await heldBy(b.workerId)).length;
    const sessionsOfB = async () =>
      Number(
        (await database?.query<{ sessions: string }>(`select count(*) as sessions from pg_stat_activity where application_name = '${b.applicationName}'`))?.[0]
          ?.sessions,
      );
    await waitFor(async () => attemptsOf(b, await ours()) >= 5 && (await holding()) > 0, 'B to be delivering');
    expect(await sessionsOfB()).toBeGreaterThan(0);
    const killedAt = Date.now();
    expect(await b.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    // A commit B sent just before it died may still be under way in PostgreSQL: what B held is read once its sessions are gone.
    await waitFor(async () => (await sessionsOfB()) === 0, "B's PostgreSQL sessions to end");
    const heldByB = await heldBy(b.workerId);
    expect(heldByB.length, 'deliveries B held when it died').toBeGreaterThan(0);

    const published = (await publishing).flat();
    await waitFor(() => receiver.received.size >= published.length, 'every webhook delivered after the kill', 90_000);
    await waitFor(async () => {
      const rows = await database?.query<{ pending: string }>(
        `select count(*) as pending from herald_deliveries where subscription_id = '${subscriptionId}' and status <> 'delivered'`,
      );
      return Number(rows?.[0]?.pending) === 0;
    }, 'every delivery settled as delivered');

    expect([...receiver.received.keys()].sort()).toEqual(published.map((event) => event.id).sort());
    // What B held was sent again by A or C, and only once its lease was over.
    for (const { event_id, locked_until } of heldByB) {
      const times = receiver.received.get(event_id) ?? [];
      expect(times.length, `sends of event ${event_id}`).toBeGreaterThanOrEqual(1);
      const sends = times.map((time) => time - killedAt).join(', ');
      expect(times.at(-1), `event ${event_id} sent at ${sends} ms after the kill; B's lease ended at ${Number(locked_until) - killedAt}`).toBeGreaterThanOrEqual(
        Number(locked_until),
      );
      expect(Number(locked_until) - killedAt).toBeLessThanOrEqual(webhookLease);
    }
    // At least once: only what B held when it died may have been sent twice.
    const heldEvents = new Set(heldByB.map(({ event_id }) => event_id));
    const sentTwice = [...receiver.received].filter(([, times]) => times.length > 1).map(([id]) => id);
    expect(sentTwice.filter((id) => !heldEvents.has(id))).toEqual([]);
    expect(a.errors + c.errors).not.toMatch(/error/i);
  }, 180_000);

  // After the SIGKILL test: B is gone, and this one kills C.
  it('SIGKILL of the node under WebSocket and SSE clients: they resume on another node from their last seq, and miss nothing', async () => {
    const [a, , c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const key = (await api(a, adminKey, 'POST', '/v1/keys', { role: 'consumer', consumer: 'acme' })).body.key as string;
    const socket = await socketClient(c, key, ['order.*']);
    const stream = await streamClient(c, key, ['order.*']);
    const published: Published[] = [];
    const publishing = publishMany(a, adminKey, { count: 600, concurrency: 4, into: published });
    publishing.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
    await waitFor(() => socket.events.length >= 100 && stream.events.length >= 100, 'both clients receiving from C');
    expect(await c.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    socket.close();
    stream.close();
    // Each resumes on A after the last event it got from C, while A goes on publishing.
    expect(published.length, 'still publishing when C died').toBeLessThan(600);
    const resumedSocket = await socketClient(a, key, ['order.*'], socket.events.at(-1)?.seq);
    const resumedStream = await streamClient(a, key, ['order.*'], stream.events.at(-1)?.seq);
    try {
      await publishing;
      const all = published.sort((x, y) => x.seq - y.seq);
      await waitFor(() => socket.events.length + resumedSocket.events.length >= all.length, 'every event over the WebSockets');
      await waitFor(() => stream.events.length + resumedStream.events.length >= all.length, 'every event over SSE');
      await new Promise((done) => setTimeout(done, 1_000));
      expect(exactlyOnceInOrder([...socket.events, ...resumedSocket.events], all)).toEqual([]);
      expect(exactlyOnceInOrder([...stream.events, ...resumedStream.events], all)).toEqual([]);
      expect(resumedSocket.events.length).toBeGreaterThan(0);
      expect(resumedStream.events.length).toBeGreaterThan(0);
    } finally {
      resumedSocket.close();
      resumedStream.close();
    }
    expect(a.errors).not.toMatch(/error/i);
  }, 120_000);
});
