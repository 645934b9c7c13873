import { context, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { z } from 'zod';
import type { HeraldEvent } from './envelope.js';
import { ForbiddenError, UnavailableError, ValidationError } from './errors.js';
import { EventBus } from './event-bus.js';
import { defineEventType, EventCatalog } from './event-type-catalog.js';
import { type Logger, silentLogger } from './logger.js';
import { recordingLogger } from '../../testkit/src/recording-logger.js';
import { memoryBroker } from './memory-broker.js';
import type { Principal } from './principal.js';
import { sqliteStore } from './sql/sqlite-store.js';
import { SubscriptionNotFoundError, WrongTransportError } from './stream-errors.js';
import type { MatchedBatch } from './stream-match-group.js';
import type { StreamEndReason, StreamSession } from './stream-session.js';
import { type StreamContext, StreamSessions, type StreamSessionsOptions } from './stream-sessions.js';
import type { ResetReason, StreamRequest, StreamSink, StreamSubscription } from './stream-subscription.js';
import { SubscriptionRegistry } from './subscription-registry.js';
import { tempDatabase } from './temp-folder.test-support.js';
import { type ConnectionLimiter, TooManyConnectionsError, type TransportMetrics } from './transport.js';

const eventTypes = ['order.created', 'order.shipped', 'invoice.paid'] as const;
type EventType = (typeof eventTypes)[number];

/** The server's connection limit, as `createHerald` counts it: open sessions per credential. */
function connectionLimit(max: number): ConnectionLimiter {
  const open = new Map<string, number>();
  return {
    acquire(principal) {
      const count = open.get(principal.keyId) ?? 0;
      if (count >= max) return undefined;
      open.set(principal.keyId, count + 1);
      let released = false;
      return () => {
        if (!released) open.set(principal.keyId, (open.get(principal.keyId) ?? 1) - 1);
        released = true;
      };
    },
  };
}

interface Streaming {
  sessions: StreamSessions;
  registry: SubscriptionRegistry;
  bus: EventBus;
  store: ReturnType<typeof sqliteStore>;
  publish(type: EventType, n: number, consumer?: string): Promise<HeraldEvent>;
  durable(consumer: string, types: string[], transport?: string): Promise<string>;
  cursorOf(id: string): Promise<number | undefined>;
  revoke(keyId: string): Promise<void>;
}

/** A real SQLite store (in memory, or a file), event bus, memory broker and subscription registry, and the sessions of a transport `test`. */
async function streaming(
  options: Partial<StreamSessionsOptions> & { path?: string; maxConnections?: number; logger?: Logger; metrics?: TransportMetrics } = {},
): Promise<Streaming> {
  const store = sqliteStore({ path: options.path ?? ':memory:' });
  await store.init();
  const broker = memoryBroker();
  const catalog = new EventCatalog(eventTypes.map((name) => defineEventType(name, z.object({ n: z.number() }))));
  const bus = new EventBus({ store, broker, catalog, pollInterval: 60_000 });
  await bus.start();
  const registry = new SubscriptionRegistry(store, broker);
  await registry.start();
  const revocations = new Set<(keyId: string) => void>();
  await broker.subscribe('herald:key-revoked', (keyId) => {
    for (const listener of revocations) listener(keyId);
  });
  const context: StreamContext = {
    store,
    bus,
    catalog,
    subscriptions: registry,
    logger: options.logger ?? silentLogger,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    connections: connectionLimit(options.maxConnections ?? 1000),
    onKeyRevoked(listener) {
      revocations.add(listener);
      return () => revocations.delete(listener);
    },
  };
  const sessions = new StreamSessions(context, { transport: 'test', cursorInterval: 20, ...options });
  let stopped = false;
  const stop = sessions.stop.bind(sessions);
  sessions.stop = (drain) => {
    stopped = true;
    return stop(drain);
  };
  onTestFinished(async () => {
    if (!stopped) await sessions.stop();
    await registry.stop();
    await bus.stop();
    await store.close();
  });
  return {
    sessions,
    registry,
    bus,
    store,
    publish: async (type, n, consumer) => (await bus.publish({ type, data: { n }, ...(consumer !== undefined ? { consumer } : {}) })).event,
    durable: async (consumer, types, transport = 'test') =>
      (await registry.create({ consumer, transport, types, status: 'active', config: {}, cursor: bus.latest })).id,
    cursorOf: async (id) => (await registry.get(id))?.cursor,
    revoke: (keyId) => broker.publish('herald:key-revoked', keyId),
  };
}

/** A connection that keeps what it is sent, and closes its session when the server ends it, as a transport's would. */
class RecordingSink implements StreamSink {
  readonly delivered = new Map<string, HeraldEvent[]>();
  readonly resets: { id: string; reason: ResetReason; latest: number; oldest?: number }[] = [];
  readonly ended: StreamEndReason[] = [];
  /** Writes: a corked batch counts once, like one system call. */
  writes = 0;
  #corked = false;

  constructor(readonly session: StreamSession) {
    session.attach(this);
  }

  events(id = ''): HeraldEvent[] {
    return this.delivered.get(id) ?? [];
  }

  deliver(subscription: StreamSubscription, event: HeraldEvent): boolean {
    const list = this.delivered.get(subscription.id) ?? [];
    list.push(event);
    this.delivered.set(subscription.id, list);
    if (!this.#corked) this.writes += 1;
    return true;
  }

  cork(): void {
    this.#corked = true;
  }

  uncork(): void {
    this.#corked = false;
    this.writes += 1;
  }

  reset(subscription: StreamSubscription, reason: ResetReason, latest: number, oldest?: number): void {
    this.resets.push({ id: subscription.id, reason, latest, ...(oldest !== undefined ? { oldest } : {}) });
  }

  end(reason: StreamEndReason): void {
    this.ended.push(reason);
    this.session.close();
  }
}

const consumerKey = (consumer: string, keyId = `key_${consumer}`): Principal => ({ keyId, role: 'consumer', consumer });
const admin: Principal = { keyId: 'key_admin', role: 'admin' };
const streamToken = (parent: Principal, extra: Partial<Principal> = {}): Principal => ({
  keyId: `stk_${Math.random().toString(36).slice(2)}`,
  role: 'consumer',
  credential: 'stream-token',
  parentKeyId: parent.keyId,
  ...(parent.consumer !== undefined ? { consumer: parent.consumer } : {}),
  ...extra,
});

/** Opens a session with a recording sink (of class `Sink`) and starts one subscription on it. */
async function subscribe<TSink extends RecordingSink = RecordingSink>(
  streams: Streaming,
  principal: Principal,
  request: StreamRequest,
  Sink: new (session: StreamSession) => TSink = RecordingSink as new (session: StreamSession) => TSink,
): Promise<{ sink: TSink; subscription: StreamSubscription }> {
  const sink = new Sink(streams.sessions.open(principal));
  const subscription = sink.session.subscribe(request);
  await subscription.resolve();
  await subscription.start();
  return { sink, subscription };
}

const seqs = (events: readonly HeraldEvent[]) => events.map((event) => event.seq);

/** Lets the bus hand over what was published, and the broker's messages and timers due now run. */
const linger = (ms = 30) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the span of a live batch', () => {
  it('is made only when the transport has a subscription to offer the batch to', async () => {
    const exporter = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    onTestFinished(() => {
      trace.disable();
      context.disable();
    });
    const delivers = () => exporter.getFinishedSpans().filter((span) => span.name.startsWith('deliver'));
    const streams = await streaming();
    await streams.publish('order.created', 1);
    await linger();
    expect(delivers()).toEqual([]);
    const { sink } = await subscribe(streams, consumerKey('acme'), { id: 'orders', types: ['order.*'] });
    await streams.publish('order.created', 2);
    await vi.waitFor(() => expect(sink.events('orders')).toHaveLength(1));
    expect(delivers().map((span) => [span.name, span.attributes['herald.transport']])).toEqual([['deliver order.created', 'test']]);
  });
});

describe('ad hoc subscriptions', () => {
  it('deliver the types asked for, live from now, in order, each batch in one write', async () => {
    const streams = await streaming();
    await streams.publish('order.created', 0);
    const { sink, subscription } = await subscribe(streams, consumerKey('acme'), { id: 'orders', types: ['order.*'] });
    expect(subscription.position).toBe(1);
    expect(subscription.live).toBe(true);
    const published = await streams.bus.publishMany([
      { type: 'order.created', data: { n: 1 } },
      { type: 'invoice.paid', data: { n: 2 } },
      { type: 'order.shipped', data: { n: 3 } },
    ]);
    await vi.waitFor(() => expect(sink.events('orders')).toHaveLength(2));
    expect(seqs(sink.events('orders'))).toEqual([published[0]?.event.seq, published[2]?.event.seq]);
    expect(sink.writes).toBe(1);
    expect(subscription.position).toBe(published[2]?.event.seq);
  });

  it('give each principal only what it may see: a consumer its own and broadcast events, an admin every one, a token for no consumer only broadcast ones', async () => {
    const streams = await streaming();
    const acme = await subscribe(streams, consumerKey('acme'), { types: ['**'] });
    const everything = await subscribe(streams, admin, { types: ['**'] });
    const nobody = await subscribe(streams, streamToken(admin), { types: ['**'] });
    const published = [
      await streams.publish('order.created', 1, 'acme'),
      await streams.publish('order.created', 2, 'beta'),
      await streams.publish('order.created', 3),
    ];
    await vi.waitFor(() => expect(everything.sink.events()).toHaveLength(3));
    await linger();
    expect(seqs(acme.sink.events())).toEqual([published[0]?.seq, published[2]?.seq]);
    expect(seqs(everything.sink.events())).toEqual(seqs(published));
    expect(seqs(nobody.sink.events())).toEqual([published[2]?.seq]);
  });

  it('refuse patterns wider than a stream token allows, and types the catalog does not know; a token within its types is served', async () => {
    const streams = await streaming();
    const token = streamToken(consumerKey('acme'), { types: ['order.*'] });
    const session = streams.sessions.open(token);
    const wider = session.subscribe({ types: ['order.**'] }).resolve();
    await expect(wider).rejects.toBeInstanceOf(ForbiddenError);
    await expect(wider).rejects.toThrow('This token may not stream order.**');
    const typo = streams.sessions.open(consumerKey('acme')).subscribe({ types: ['order.created', 'ordr.*'] }).resolve();
    await expect(typo).rejects.toBeInstanceOf(ValidationError);
    await expect(typo).rejects.toMatchObject({ code: 'unknown-event-type', message: 'ordr.* matches no event type in the catalog', issues: [{ path: ['types', 1] }] });
    const within = session.subscribe({ types: ['order.created'] });
    await within.resolve();
    expect(within.patterns).toEqual(['order.created']);
  });

  it('apply a filter to the replay and to live events alike', async () => {
    const streams = await streaming();
    const published = [];
    for (let n = 0; n < 6; n++) published.push(await streams.publish('order.created', n));
    const even = (event: HeraldEvent) => (event.data as { n: number }).n % 2 === 0;
    const { sink } = await subscribe(streams, consumerKey('acme'), { types: ['order.*'], after: 0, filter: even });
    for (let n = 6; n < 10; n++) published.push(await streams.publish('order.created', n));
    await vi.waitFor(() => expect(sink.events()).toHaveLength(5));
    await linger();
    expect(seqs(sink.events())).toEqual(seqs(published.filter(even)));
  });
});

describe('durable subscriptions', () => {
  it('a cursor left behind by retention is reset, logged and counted, then moves on: never stuck (issue 16)', async () => {
    const recorder = recordingLogger();
    // As createHerald gives a transport its logger: with the transport bound.
    const logger = recorder.child({ transport: 'test' });
    let cursorResets = 0;
    const metrics: TransportMetrics = { delivered: () => {}, backlog: () => {}, cursorReset: () => void (cursorResets += 1) };
    const streams = await streaming({ logger, metrics });
    const id = await streams.durable('acme', ['order.created']);
    for (let n = 1; n <= 5; n++) await streams.publish('order.created', n);
    await streams.store.prune({ maxAge: 86_400_000, maxEvents: 2, types: new Map() });
    expect((await streams.store.bounds()).oldest).toBe(4);

    const { sink, subscription } = await subscribe(streams, consumerKey('acme'), { id: 'd', subscription: id });
    expect(sink.resets).toEqual([{ id: 'd', reason: 'expired', latest: 0, oldest: 4 }]);
    expect(seqs(sink.events('d'))).toEqual([4, 5]);
    expect(cursorResets).toBe(1);
    const warned = recorder.entries.find((line) => line.level === 'warn');
    expect(warned?.fields).toEqual({ transport: 'test', subscription: id, cursor: 0, oldest: 4 });
    expect(recorder.boundAgain).toEqual([]);
    // Reset at once to where the log is whole, then moved on as the client acknowledges.
    await vi.waitFor(async () => expect(await streams.cursorOf(id)).toBe(3));
    expect(subscription.acknowledge(5)).toBe(true);
    await vi.waitFor(async () => expect(await streams.cursorOf(id)).toBe(5));
  });

  it('resume from the stored cursor, and follow changes of their types and status at once', async () => {
    const streams = await streaming();
    const id = await streams.durable('acme', ['order.created']);
    const missed = [await streams.publish('order.created', 1), await streams.publish('invoice.paid', 2), await streams.publish('order.created', 3, 'beta')];
    const { sink, subscription } = await subscribe(streams, consumerKey('acme'), { id: 'd', subscription: id });
    expect(subscription.durable).toBe(id);
    expect(seqs(sink.events('d'))).toEqual([missed[0]?.seq]);
    expect(subscription.position).toBe(missed[2]?.seq);

    await streams.registry.update(id, { types: ['order.created', 'invoice.paid'] });
    const invoice = await streams.publish('invoice.paid', 4);
    await streams.registry.update(id, { status: 'paused' });
    await streams.publish('order.created', 5);
    await streams.registry.update(id, { status: 'active' });
    const after = await streams.publish('order.created', 6);
    await vi.waitFor(() => expect(sink.events('d')).toHaveLength(3));
    await linger();
    expect(seqs(sink.events('d'))).toEqual([missed[0]?.seq, invoice.seq, after.seq]);
  });

  it("refuse another consumer's subscription as one that does not exist, another transport's, and one wider than a token's types", async () => {
    const streams = await streaming();
    const theirs = await streams.durable('beta', ['order.*']);
    const webhook = await streams.durable('acme', ['order.*'], 'webhook');
    const wide = await streams.durable('acme', ['**']);
    const session = streams.sessions.open(consumerKey('acme'));
    const refusal = (id: string) => session.subscribe({ subscription: id }).resolve().then(
      () => expect.fail(`attaching to ${id} was not refused`),
      (error: SubscriptionNotFoundError) => error,
    );
    const other = await refusal(theirs);
    const missing = await refusal('sub_none');
    expect(other).toBeInstanceOf(SubscriptionNotFoundError);
    expect(missing).toBeInstanceOf(SubscriptionNotFoundError);
    expect([other.status, other.code, other.message.replace(theirs, 'X')]).toEqual([missing.status, missing.code, missing.message.replace('sub_none', 'X')]);
    await expect(session.subscribe({ subscription: webhook }).resolve()).rejects.toBeInstanceOf(WrongTransportError);

    const token = streams.sessions.open(streamToken(consumerKey('acme'), { types: ['order.*'] }));
    await expect(token.subscribe({ subscription: wide }).resolve()).rejects.toBeInstanceOf(ForbiddenError);
    // A token for no consumer reaches no consumer's subscription; an admin reaches every one.
    await expect(streams.sessions.open(streamToken(admin)).subscribe({ subscription: theirs }).resolve()).rejects.toBeInstanceOf(SubscriptionNotFoundError);
    await streams.sessions.open(admin).subscribe({ subscription: theirs }).resolve();
  });

  it('move the cursor as the client acknowledges, and past what they pass over once everything delivered is acknowledged', async () => {
    const streams = await streaming();
    const id = await streams.durable('acme', ['order.*']);
    const { sink, subscription } = await subscribe(streams, consumerKey('acme'), { subscription: id });
    const first = await streams.publish('order.created', 1);
    const second = await streams.publish('order.created', 2);
    await vi.waitFor(() => expect(sink.events()).toHaveLength(2));
    expect(subscription.acknowledge(second.seq + 1)).toBe(false);
    expect(subscription.acknowledge(first.seq)).toBe(true);
    await vi.waitFor(async () => expect(await streams.cursorOf(id)).toBe(first.seq));
    // Not taken, but `second` is not acknowledged yet: the cursor must not pass it.
    const invoice = await streams.publish('invoice.paid', 3);
    await vi.waitFor(() => expect(subscription.position).toBe(invoice.seq));
    await linger(60);
    expect(await streams.cursorOf(id)).toBe(first.seq);
    // Acknowledging the last delivered event covers what was passed over after it.
    subscription.acknowledge(second.seq);
    await vi.waitFor(async () => expect(await streams.cursorOf(id)).toBe(invoice.seq));
    // With nothing waiting for an acknowledgement, what is passed over moves the cursor on its own.
    const another = await streams.publish('invoice.paid', 4);
    await vi.waitFor(async () => expect(await streams.cursorOf(id)).toBe(another.seq));
  });

  it('take an acknowledgement at or below the stored cursor as done, also before the replay reaches it; the cursor never goes back', async () => {
    const streams = await streaming();
    const id = await streams.durable('acme', ['order.*']);
    const events = [await streams.publish('order.created', 1), await streams.publish('order.created', 2), await streams.publish('order.created', 3)];
    const [first, second, third] = seqs(events) as [number, number, number];
    await streams.registry.advanceCursor(id, second);
    // Resolved, not started: the stored cursor is known, nothing is delivered yet.
    const sink = new RecordingSink(streams.sessions.open(consumerKey('acme')));
    const subscription = sink.session.subscribe({ subscription: id, after: 0 });
    await subscription.resolve();
    expect(subscription.acknowledge(second)).toBe(true);
    expect(subscription.acknowledge(first)).toBe(true);
    expect(subscription.acknowledge(third)).toBe(false);
    await subscription.start();
    expect(seqs(sink.events())).toEqual([first, second, third]);
    expect(subscription.acknowledge(first)).toBe(true);
    await linger(60);
    expect(await streams.cursorOf(id)).toBe(second);
    expect(subscription.acknowledge(third)).toBe(true);
    await vi.waitFor(async () => expect(await streams.cursorOf(id)).toBe(third));
  });

  it('take an acknowledgement within a resume position past the end of the log only up to that end: the cursor never passes it', async () => {
    const streams = await streaming();
    const id = await streams.durable('acme', ['order.*']);
    for (let n = 0; n < 3; n++) await streams.publish('order.created', n);
    const sink = new RecordingSink(streams.sessions.open(consumerKey('acme')));
    const subscription = sink.session.subscribe({ subscription: id, after: 99 });
    await subscription.resolve();
    // As a WebSocket client's ack sent with its subscribe: the resume position covers it, but is past the end of the log.
    const started = subscription.start();
    expect(subscription.acknowledge(99)).toBe(true);
    await started;
    expect(sink.resets).toEqual([{ id: '', reason: 'ahead', latest: 3 }]);
    await linger(60);
    expect(await streams.cursorOf(id)).toBe(3);

    // The next event is delivered, and, not acknowledged, delivered again to the next session.
    const next = await streams.publish('order.created', 3);
    await vi.waitFor(() => expect(seqs(sink.events())).toEqual([next.seq]));
    sink.session.close();
    const again = await subscribe(streams, consumerKey('acme'), { subscription: id });
    expect(again.sink.resets).toEqual([]);
    expect(seqs(again.sink.events())).toEqual([next.seq]);
  });

  it('pass over, for good, what is published while paused and a client is attached (the one rule for paused subscriptions)', async () => {
    const streams = await streaming();
    const id = await streams.durable('acme', ['order.*']);
    const first = await subscribe(streams, consumerKey('acme'), { subscription: id });
    await streams.registry.update(id, { status: 'paused' });
    const whilePaused = [await streams.publish('order.created', 1), await streams.publish('order.created', 2)];
    await vi.waitFor(async () => expect(await streams.cursorOf(id)).toBe(whilePaused[1]?.seq));
    first.sink.session.close();
    await streams.registry.update(id, { status: 'active' });
    const later = await streams.publish('order.created', 3);

    const second = await subscribe(streams, consumerKey('acme'), { subscription: id });
    expect(seqs(second.sink.events())).toEqual([later.seq]);
    expect(first.sink.events()).toEqual([]);
  });

  it('apply a filter on a durable subscription too, and what it refuses moves the cursor', async () => {
    const streams = await streaming();
    const id = await streams.durable('acme', ['order.*']);
    const big = (event: HeraldEvent) => (event.data as { n: number }).n >= 100;
    const { sink } = await subscribe(streams, consumerKey('acme'), { subscription: id, filter: big });
    const small = await streams.publish('order.created', 5);
    await vi.waitFor(async () => expect(await streams.cursorOf(id)).toBe(small.seq));
    const large = await streams.publish('order.created', 500);
    await vi.waitFor(() => expect(seqs(sink.events())).toEqual([large.seq]));
  });
});

describe('resume', () => {
  for (const holdLimit of [10_000, 3]) {
    it(`replays after a position then hands over to live events, nothing lost or repeated, while 4 publishers go on (hold limit ${holdLimit})`, async () => {
      const streams = await streaming({ replayBatchSize: 50, holdLimit });
      for (let n = 0; n < 600; n++) await streams.publish(eventTypes[n % 3] as EventType, n);
      let publishing = true;
      const publishers = Array.from({ length: 4 }, async (_, loop) => {
        for (let n = 0; publishing; n++) await streams.publish(eventTypes[(n + loop) % 3] as EventType, n);
      });
      const started: { sink: RecordingSink; after: number }[] = [];
      for (const after of [0, 100, 350, 590, 600]) {
        started.push({ sink: (await subscribe(streams, admin, { types: ['order.*'], after })).sink, after });
        await linger(10);
      }
      publishing = false;
      await Promise.all(publishers);
      const log = await streams.store.read({ after: 0, limit: 100_000, types: ['order.*'] });
      for (const { sink, after } of started) {
        const expected = seqs(log.filter((event) => event.seq > after));
        await vi.waitFor(() => expect(sink.events().length).toBeGreaterThanOrEqual(expected.length), { timeout: 10_000 });
        await linger();
        expect(seqs(sink.events())).toEqual(expected);
      }
    }, 30_000);
  }

  it('resets when the resume position is past the end of the log (then goes on live), or older than the log keeps (then goes on with what it holds)', async () => {
    const path = tempDatabase();
    const streams = await streaming({ path });
    for (let n = 0; n < 5; n++) await streams.publish('order.created', n);
    const ahead = await subscribe(streams, admin, { id: 'ahead', types: ['**'], after: 99 });
    expect(ahead.sink.resets).toEqual([{ id: 'ahead', reason: 'ahead', latest: 5 }]);
    expect(ahead.subscription.position).toBe(5);

    // The log no longer keeps its first three events (as retention drops them: the floor moves past them).
    const database = new Database(path);
    database.prepare('DELETE FROM herald_events WHERE seq <= 3').run();
    database.prepare("UPDATE herald_counters SET value = 3 WHERE name = 'log_floor'").run();
    database.close();
    const expired = await subscribe(streams, admin, { id: 'expired', types: ['**'], after: 1 });
    expect(expired.sink.resets).toEqual([{ id: 'expired', reason: 'expired', latest: 1, oldest: 4 }]);
    expect(seqs(expired.sink.events('expired'))).toEqual([4, 5]);
    const kept = await subscribe(streams, admin, { id: 'kept', types: ['**'], after: 3 });
    expect(kept.sink.resets).toEqual([]);
    expect(seqs(kept.sink.events('kept'))).toEqual([4, 5]);

    const next = await streams.publish('order.created', 5);
    for (const [id, { sink }] of [['ahead', ahead], ['expired', expired], ['kept', kept]] as const) {
      await vi.waitFor(() => expect(sink.events(id).at(-1)?.seq).toBe(next.seq));
    }
  });
});

describe('the end of a session', () => {
  it('comes when its key is revoked, for the key and the stream tokens it issued, and no other', async () => {
    const streams = await streaming();
    const key = consumerKey('acme', 'key_revoked');
    const byKey = await subscribe(streams, key, { types: ['**'] });
    const byToken = await subscribe(streams, streamToken(key), { types: ['**'] });
    const bystander = await subscribe(streams, consumerKey('acme', 'key_kept'), { types: ['**'] });
    await streams.revoke('key_revoked');
    await vi.waitFor(() => expect([byKey.sink.ended, byToken.sink.ended]).toEqual([['revoked'], ['revoked']]));
    expect(byKey.subscription.closed).toBe(true);
    const event = await streams.publish('order.created', 1);
    await vi.waitFor(() => expect(seqs(bystander.sink.events())).toEqual([event.seq]));
    expect([byKey.sink.events(), byToken.sink.events(), bystander.sink.ended]).toEqual([[], [], []]);
    expect(streams.sessions.size).toBe(1);
  });

  it('comes when its stream token expires, unless it was refreshed with a later one', async () => {
    const streams = await streaming();
    const key = consumerKey('acme');
    const soon = () => new Date(Date.now() + 150).toISOString();
    const expiring = await subscribe(streams, streamToken(key, { expiresAt: soon() }), { types: ['order.*'] });
    const refreshed = await subscribe(streams, streamToken(key, { expiresAt: soon() }), { types: ['order.*'] });
    refreshed.sink.session.refresh(streamToken(key, { expiresAt: new Date(Date.now() + 60_000).toISOString() }));
    await vi.waitFor(() => expect(expiring.sink.ended).toEqual(['token-expired']));
    await linger(200);
    expect(refreshed.sink.ended).toEqual([]);
    const event = await streams.publish('order.created', 1);
    await vi.waitFor(() => expect(seqs(refreshed.sink.events())).toEqual([event.seq]));
  });

  it('refuses a refresh for another consumer, or one that no longer covers the open subscriptions, and changes nothing', async () => {
    const streams = await streaming();
    const key = consumerKey('acme');
    const { sink } = await subscribe(streams, streamToken(key, { types: ['order.*'] }), { types: ['order.created'] });
    const before = sink.session.principal;
    expect(() => sink.session.refresh(streamToken(consumerKey('beta')))).toThrow(ForbiddenError);
    expect(() => sink.session.refresh(streamToken(key, { types: ['invoice.*'] }))).toThrow(ForbiddenError);
    expect(sink.session.principal).toBe(before);
  });

  it('counts sessions against the connection limit of their credential, and frees the slot when one closes', async () => {
    const streams = await streaming({ maxConnections: 2 });
    const key = consumerKey('acme');
    const first = streams.sessions.open(key);
    streams.sessions.open(key);
    expect(() => streams.sessions.open(key)).toThrow(TooManyConnectionsError);
    // Another credential has its own count; a refresh to a credential at its limit is refused.
    const token = streamToken(key);
    const other = streams.sessions.open(token);
    streams.sessions.open(token);
    expect(() => other.refresh(key)).toThrow(TooManyConnectionsError);
    first.close();
    streams.sessions.open(key);
    expect(streams.sessions.size).toBe(4);
  });

  it('comes for every session on stop, which waits for the drain and then stores the cursors', async () => {
    const streams = await streaming({ cursorInterval: 60_000 });
    const id = await streams.durable('acme', ['order.*']);
    const { sink, subscription } = await subscribe(streams, consumerKey('acme'), { subscription: id });
    const other = await subscribe(streams, admin, { types: ['**'] });
    const event = await streams.publish('order.created', 1);
    await vi.waitFor(() => expect(sink.events()).toHaveLength(1));
    subscription.acknowledge(event.seq);
    let drained = false;
    await streams.sessions.stop(async () => {
      expect([sink.ended, other.sink.ended]).toEqual([['stopping'], ['stopping']]);
      expect(await streams.cursorOf(id)).toBe(0);
      drained = true;
    });
    expect(drained).toBe(true);
    expect(await streams.cursorOf(id)).toBe(event.seq);
    expect(() => streams.sessions.open(admin)).toThrow(UnavailableError);
    await streams.publish('order.created', 2);
    await linger();
    expect(other.sink.events()).toHaveLength(1);
  });
});

describe('pull', () => {
  it('answers what the log holds after a position, at most `limit`, and where to go on from', async () => {
    const streams = await streaming();
    const published = [];
    for (let n = 0; n < 9; n++) published.push(await streams.publish(eventTypes[n % 3] as EventType, n));
    const session = streams.sessions.open(consumerKey('acme'));
    const pull = async (after: number, limit: number) => {
      const subscription = session.subscribe({ types: ['order.*'], after });
      await subscription.resolve();
      return subscription.pull({ limit, wait: 0 });
    };
    const orders = published.filter((event) => event.type.startsWith('order.'));
    const first = await pull(0, 3);
    expect(seqs(first.events)).toEqual(seqs(orders.slice(0, 3)));
    expect(first.next).toBe(orders[2]?.seq);
    const rest = await pull(first.next, 3);
    expect(seqs(rest.events)).toEqual(seqs(orders.slice(3)));
    // The invoice at the end of the log is passed over: `next` is past it.
    expect(rest.next).toBe(9);
    expect(await pull(rest.next, 3)).toEqual({ events: [], next: 9, waited: false });
    expect(await pull(99, 3)).toEqual({ events: [], next: 9, reset: { reason: 'ahead', latest: 9 }, waited: false });
    // A reset does not wait for the next event.
    const ahead = session.subscribe({ types: ['order.*'], after: 99 });
    await ahead.resolve();
    expect(await ahead.pull({ limit: 3, wait: 60_000 })).toEqual({ events: [], next: 9, reset: { reason: 'ahead', latest: 9 }, waited: false });
    expect(session.subscriptions).toEqual([]);
  });

  it('waits up to `wait` for the first event when nothing follows the position, and answers empty after it', async () => {
    const streams = await streaming();
    const session = streams.sessions.open(admin);
    const waiting = session.subscribe({ types: ['order.*'] });
    await waiting.resolve();
    const answer = waiting.pull({ limit: 10, wait: 10_000 });
    await linger();
    const published = await streams.bus.publishMany([
      { type: 'invoice.paid', data: { n: 1 } },
      { type: 'order.created', data: { n: 2 } },
      { type: 'order.shipped', data: { n: 3 } },
    ]);
    const { events, next, waited } = await answer;
    expect(seqs(events)).toEqual([published[1]?.event.seq, published[2]?.event.seq]);
    // Nothing followed its position: it waited, and live events answered it.
    expect(waited).toBe(true);
    expect(next).toBe(published[2]?.event.seq);

    const empty = session.subscribe({ types: ['order.*'], after: next });
    await empty.resolve();
    const started = Date.now();
    expect(await empty.pull({ limit: 10, wait: 100 })).toEqual({ events: [], next, waited: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });

  it('advances a durable cursor when the consumer pulls again from `next`, passing over what the subscription does not take', async () => {
    const streams = await streaming();
    const id = await streams.durable('acme', ['order.*']);
    const published = [await streams.publish('order.created', 1), await streams.publish('invoice.paid', 2), await streams.publish('order.created', 3, 'beta')];
    const session = streams.sessions.open(consumerKey('acme'));
    const pull = async (after?: number) => {
      const subscription = session.subscribe({ subscription: id, ...(after !== undefined ? { after } : {}) });
      await subscription.resolve();
      return subscription.pull({ limit: 10 });
    };
    const first = await pull();
    expect(seqs(first.events)).toEqual([published[0]?.seq]);
    // Answered at once, from the log.
    expect(first.waited).toBe(false);
    expect(first.next).toBe(3);
    // Not acknowledged yet: pulling again from the cursor gets the same answer.
    expect(await streams.cursorOf(id)).toBe(0);
    expect(await pull()).toEqual(first);
    const second = await pull(first.next);
    expect(second).toEqual({ events: [], next: 3, waited: false });
    await vi.waitFor(async () => expect(await streams.cursorOf(id)).toBe(3));
  });

  it('with batchWait, waits that long after the first event for more, and answers at once when `limit` is reached or the session ends', async () => {
    const streams = await streaming();
    const session = streams.sessions.open(consumerKey('acme', 'key_batching'));
    const pull = async (options: { limit: number; batchWait: number }) => {
      const subscription = session.subscribe({ types: ['order.*'] });
      await subscription.resolve();
      return subscription.pull({ wait: 60_000, ...options });
    };
    const together = pull({ limit: 10, batchWait: 2_000 });
    await linger();
    const first = await streams.publish('order.created', 1);
    await linger(300);
    const second = await streams.publish('order.created', 2);
    expect(seqs((await together).events)).toEqual([first.seq, second.seq]);

    const full = pull({ limit: 2, batchWait: 60_000 });
    await linger();
    const began = Date.now();
    const atLimit = [await streams.publish('order.created', 3), await streams.publish('order.created', 4)];
    expect(seqs((await full).events)).toEqual(seqs(atLimit));
    expect(Date.now() - began).toBeLessThan(20_000);

    const ending = pull({ limit: 10, batchWait: 60_000 });
    await linger();
    const last = await streams.publish('order.created', 5);
    await linger();
    await streams.revoke('key_batching');
    expect(seqs((await ending).events)).toEqual([last.seq]);
  });

  it('ends a waiting pull with what it has when the session ends', async () => {
    const streams = await streaming();
    const session = streams.sessions.open(consumerKey('acme', 'key_gone'));
    const subscription = session.subscribe({ types: ['order.*'] });
    await subscription.resolve();
    const answer = subscription.pull({ limit: 10, wait: 60_000 });
    await linger();
    await streams.revoke('key_gone');
    expect(await answer).toEqual({ events: [], next: streams.bus.latest, waited: true });
    expect(session.ended).toBe('revoked');
  });
});

/** A sink that takes live batches matched for its subscription's group, as the WebSocket and SSE connections do. */
class MatchedSink extends RecordingSink {
  readonly batches: MatchedBatch[] = [];

  deliverMatched(subscription: StreamSubscription, batch: MatchedBatch): boolean {
    this.batches.push(batch);
    const list = this.delivered.get(subscription.id) ?? [];
    list.push(...batch.events);
    this.delivered.set(subscription.id, list);
    this.writes += 1;
    return true;
  }
}

const subscribeMatched = (streams: Streaming, principal: Principal, request: StreamRequest) => subscribe(streams, principal, request, MatchedSink);

describe('live batches matched once per group', () => {
  it('groups the subscriptions that take the same events, whatever the order of their types, and no others', async () => {
    const streams = await streaming();
    const acme = consumerKey('acme');
    const same = [
      await subscribeMatched(streams, acme, { id: 'a', types: ['order.created', 'order.shipped'] }),
      await subscribeMatched(streams, consumerKey('acme', 'key_acme_2'), { id: 'b', types: ['order.shipped', 'order.created'] }),
    ];
    const others = [
      await subscribeMatched(streams, consumerKey('beta'), { types: ['order.created', 'order.shipped'] }),
      await subscribeMatched(streams, admin, { types: ['order.created', 'order.shipped'] }),
      await subscribeMatched(streams, acme, { types: ['order.*'] }),
      await subscribeMatched(streams, acme, { types: ['order.created', 'order.shipped'], filter: { 'data.n': { $gt: 1 } } }),
    ];
    const predicates = [
      await subscribeMatched(streams, acme, { types: ['order.*'], filter: () => true }),
      await subscribeMatched(streams, acme, { types: ['order.*'], filter: () => true }),
    ];
    const durable = await streams.durable('acme', ['order.*']);
    const attached = [await subscribeMatched(streams, acme, { subscription: durable }), await subscribeMatched(streams, acme, { subscription: durable })];
    // One group for `same`, one each for `others`, one for the two attached to the durable subscription; predicates are not kept by key.
    expect(streams.sessions.groups.size).toBe(1 + others.length + 1);

    const published = await streams.bus.publishMany([
      { type: 'order.created', data: { n: 1 } },
      { type: 'order.shipped', data: { n: 2 }, consumer: 'acme' },
      { type: 'invoice.paid', data: { n: 3 } },
      { type: 'order.created', data: { n: 4 }, consumer: 'beta' },
    ]);
    const [created, shipped, , forBeta] = published.map(({ event }) => event) as HeraldEvent[];
    await vi.waitFor(() => expect(attached[1]?.sink.batches).toHaveLength(1));
    // The same batch object, matched once, for the group's subscriptions.
    expect(same[0]?.sink.batches[0]).toBe(same[1]?.sink.batches[0]);
    expect(attached[0]?.sink.batches[0]).toBe(attached[1]?.sink.batches[0]);
    expect(predicates[0]?.sink.batches[0]).not.toBe(predicates[1]?.sink.batches[0]);
    expect(seqs(same[0]?.sink.events('a') ?? [])).toEqual(seqs([created, shipped] as HeraldEvent[]));
    expect(seqs(same[1]?.sink.events('b') ?? [])).toEqual(seqs([created, shipped] as HeraldEvent[]));
    expect(seqs(others[0]?.sink.events() ?? [])).toEqual(seqs([created, forBeta] as HeraldEvent[]));
    expect(seqs(others[1]?.sink.events() ?? [])).toEqual(seqs([created, shipped, forBeta] as HeraldEvent[]));
    expect(seqs(others[2]?.sink.events() ?? [])).toEqual(seqs([created, shipped] as HeraldEvent[]));
    expect(seqs(others[3]?.sink.events() ?? [])).toEqual(seqs([shipped] as HeraldEvent[]));
    for (const { sink, subscription } of [...same, ...others, ...predicates, ...attached]) {
      expect(sink.writes).toBeLessThanOrEqual(1);
      expect(subscription.position).toBe(published.at(-1)?.event.seq);
    }

    // A group is let go of with its last subscription.
    for (const { subscription } of same) subscription.close();
    expect(streams.sessions.groups.size).toBe(others.length + 1);
    for (const { sink } of [...others, ...attached, ...predicates]) sink.session.close();
    expect(streams.sessions.groups.size).toBe(0);
  });

  it('hands a subscription offered a batch it has had part of only the rest, event by event, and its durable cursor follows', async () => {
    const streams = await streaming();
    const durable = await streams.durable('acme', ['order.*']);
    const { sink, subscription } = await subscribeMatched(streams, consumerKey('acme'), { subscription: durable });
    const events = (await streams.bus.publishMany(Array.from({ length: 3 }, (_, n) => ({ type: 'order.created' as const, data: { n } })))).map(({ event }) => event);
    await vi.waitFor(() => expect(sink.events()).toHaveLength(3));
    const last = events.at(-1) as HeraldEvent;
    // As a bus batch that a replay read in part reaches a subscription that has gone live.
    const next = { ...last, id: 'evt_next', seq: last.seq + 1 };
    const passed = { ...last, id: 'evt_passed', type: 'invoice.paid', seq: last.seq + 2 };
    subscription.offer([events[1] as HeraldEvent, last, next, passed]);
    expect(seqs(sink.events())).toEqual([...seqs(events), next.seq]);
    expect(sink.batches).toHaveLength(1);
    expect(subscription.position).toBe(passed.seq);
    // All of it handed over again: nothing.
    subscription.offer([last, next, passed]);
    expect(sink.events()).toHaveLength(4);
    // The last delivered acknowledged: the cursor passes over what followed it too.
    expect(subscription.acknowledge(next.seq)).toBe(true);
    await vi.waitFor(async () => expect(await streams.cursorOf(durable)).toBe(passed.seq));
  });
});
