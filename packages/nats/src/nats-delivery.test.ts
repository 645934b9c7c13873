import { readFileSync } from 'node:fs';
import type { Logger } from '@herald/core';
import type { LookupFunction } from '@herald/outbox';
import { deliveryAttempts, linger, publishNumbered, type RestClient, recordingLogger, startTestApp, subscribeConsumer, type TestApp, waitFor } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { resolverLookup, startTestDnsServer } from '../../outbox/src/dns-server.test-support.js';
import { expectDeliveredInOrder, onlyFailedAttempt, publishOverRest, startPushNodeProcess } from '../../testkit/src/push-node-process.test-support.js';
import { startTcpRelay } from '../../testkit/src/tcp-relay.test-support.js';
import { testTls } from '../../webhook/src/test-tls.test-support.js';
import { natsServer, type StreamConsumer, startOwnNatsServer, startSlowRelay, startStallingRelay, startStreamConsumer, startTarpit, uniqueName } from './nats-server.test-support.js';
import { NatsPool } from './nats-pool.js';
import { type NatsOptions, nats } from './nats-transport.js';

const allowPrivate = { HERALD_ALLOW_PRIVATE: '1' };
async function app(options: NatsOptions = {}, env: Record<string, string> = allowPrivate, logger?: Logger): Promise<TestApp> {
  const started = await startTestApp([nats({ pollInterval: 50, ...options })], { env, ...(logger ? { logger } : {}) });
  onTestFinished(() => started.close());
  return started;
}

async function consumer(server = natsServer): Promise<StreamConsumer> {
  const started = await startStreamConsumer(server);
  onTestFinished(() => started.close());
  return started;
}

const subscribe = async (target: RestClient, config: Record<string, unknown>, types?: string[]) => (await subscribeConsumer(target, 'nats', config, { types })).id;

/** The transport, for Herald nodes in processes of their own. */
const transportModule = new URL('./nats-transport.ts', import.meta.url);

describe('messages', () => {
  it('publishes each event to its subject with Nats-Msg-Id = the event id, and the envelope as JSON', async () => {
    const stream = await consumer();
    const server = await app();
    await subscribe(server, { servers: [natsServer], subject: `${stream.prefix}.{type}` });
    const [created] = await publishNumbered(server, 1);
    const [paid] = await publishNumbered(server, 1, 'invoice.paid');
    await waitFor(() => stream.received.length === 2, 'both messages');
    const [first, second] = stream.received;
    expect(JSON.parse(first?.message.string() as string)).toEqual(JSON.parse(JSON.stringify(created)));
    expect(first?.message.subject).toBe(`${stream.prefix}.order.created`);
    expect(second?.message.subject).toBe(`${stream.prefix}.invoice.paid`);
    expect(first?.message.headers?.get('Nats-Msg-Id')).toBe(created?.id);
    expect(first?.message.headers?.get('Herald-Seq')).toBe(String(created?.seq));
    expect(first?.message.headers?.has('Herald-Test')).toBe(false);
    expect(second?.event.id).toBe(paid?.id);
  });

  it('publishes a test event (POST /v1/subscriptions/:id/test) as an event: seq 0, an evt_test_ id, and the header Herald-Test: 1', async () => {
    const stream = await consumer();
    const server = await app();
    const id = await subscribe(server, { servers: natsServer, subject: `${stream.prefix}.{type}` });
    const tested = await server.api('POST', `/v1/subscriptions/${id}/test`, {}, await server.consumerKey('acme'));
    expect(tested.status).toBe(200);
    expect(tested.body.status).toBe('succeeded');
    await waitFor(() => stream.received.length === 1, 'the test event');
    const [{ event, message }] = stream.received as [(typeof stream.received)[number]];
    expect(event).toEqual(tested.body.event);
    expect(event.seq).toBe(0);
    expect(event.id).toMatch(/^evt_test_/);
    expect(message.subject).toBe(`${stream.prefix}.${event.type}`);
    expect([message.headers?.get('Nats-Msg-Id'), message.headers?.get('Herald-Seq'), message.headers?.get('Herald-Test')]).toEqual([event.id, '0', '1']);
  });

  it('delivers 1,000 events, none lost, and the stream drops the duplicates of a replay', async () => {
    const stream = await consumer();
    let succeeded = 0;
    const server = await app({ concurrency: 20, onAttempt: (attempt) => void (attempt.outcome === 'succeeded' && succeeded++) });
    const id = await subscribe(server, { servers: natsServer, subject: `${stream.prefix}.{type}` });
    const published = await publishNumbered(server, 1000);
    await waitFor(() => stream.ids().size === 1000, '1,000 events', 60_000);
    expect([...stream.ids()].sort()).toEqual(published.map((event) => event.id).sort());
    expect(stream.received).toHaveLength(1000);

    // A replay sends every event again, with the same Nats-Msg-Id: the stream keeps none of them twice.
    const key = await server.consumerKey('acme');
    expect((await server.api('POST', `/v1/subscriptions/${id}/replay`, { after: 0 }, key)).status).toBe(202);
    await waitFor(async () => (await server.api('GET', `/v1/subscriptions/${id}/replay`, undefined, key)).body.status === 'completed', 'the replay', 60_000);
    await waitFor(() => succeeded >= 2000, 'the replayed deliveries, each acknowledged', 60_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stream.received).toHaveLength(1000);
  }, 150_000);
});

/** The error of an attempt whose PubAck for `subject` from `server` did not come in time, and what the error says after that. */
const noPubAck = (subject: string, server: string, after = '') =>
  new RegExp(`^no PubAck for "${subject.replaceAll('.', '\\.')}" from ${server.replaceAll('.', '\\.')} within \\d+ ms${after}$`);

describe('failed attempts', () => {
  it('fails an attempt when no stream captures the subject, or the server refuses connections, with a clear error, and retries', async () => {
    const server = await app({ retrySchedule: [0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2] });
    const toNoStream = await subscribe(server, { servers: natsServer, subject: 'herald-test.nobody-listens.{type}' });
    const toNowhere = await subscribe(server, { servers: 'nats://herald:s3cret-pass@127.0.0.1:1', subject: 'x.{type}' });
    // A tls:// server must speak TLS: the machine's NATS does not, so nothing goes to it in the clear.
    const overTls = await subscribe(server, { servers: `tls://${natsServer}`, subject: 'herald-test.nobody-listens.{type}' });
    await publishNumbered(server, 1);
    const failedTwice = async (id: string) => (await deliveryAttempts(server, id)).filter((attempt) => attempt.status === 'failed').length >= 2;
    await waitFor(async () => (await failedTwice(toNoStream)) && (await failedTwice(toNowhere)), 'attempts retried');
    expect((await deliveryAttempts(server, toNoStream))[0]?.error).toBe(
      `no JetStream stream captures the subject "herald-test.nobody-listens.order.created" on ${natsServer} (no responders)`,
    );
    const refused = (await deliveryAttempts(server, toNowhere))[0]?.error;
    expect(refused).toBe('cannot connect to NATS at nats://herald:***@127.0.0.1:1: connection refused (CONNECTION_REFUSED)');
    expect(refused).not.toContain('s3cret');
    await waitFor(async () => (await deliveryAttempts(server, overTls)).length > 0, 'the attempt over TLS');
    expect((await deliveryAttempts(server, overTls))[0]?.error).toBe(`cannot connect to NATS at tls://${natsServer}: the server does not offer TLS, which tls:// requires (SERVER_OPT_NA)`);
  });

  it('fails an attempt that a plain subscriber of the subject answers, not a stream: only a PubAck naming the stream and the seq delivers', async () => {
    // The machine's NATS: a subscriber of its own answers every request on the subjects, as a JetStream stream would, but with `{}`.
    const { connect } = await import('nats');
    const responder = await connect({ servers: natsServer });
    onTestFinished(() => responder.close());
    const prefix = `herald-test.${uniqueName()}`;
    responder.subscribe(`${prefix}.>`, { callback: (_error, message) => void message.respond(new TextEncoder().encode('{}')) });
    await responder.flush();
    const server = await app({ retrySchedule: [0, 60] });
    const id = await subscribe(server, { servers: natsServer, subject: `${prefix}.{type}` });
    const [event] = await publishNumbered(server, 1);
    expect(await onlyFailedAttempt(server, id, event?.id as string)).toBe(
      `the answer to "${prefix}.order.created" from ${natsServer} is no JetStream PubAck, which names the stream and the message's seq: a subscriber of the subject, not a stream, may have answered`,
    );
  });
});

describe('a server that takes connections and never answers', () => {
  /** Sends `count` test events to the subscription, one after the other, and resolves with their errors. */
  async function testErrors(server: TestApp, id: string, count: number): Promise<(string | null)[]> {
    const key = await server.consumerKey('acme');
    const errors: (string | null)[] = [];
    for (let index = 0; index < count; index++) {
      const { status, body } = await server.api('POST', `/v1/subscriptions/${id}/test`, {}, key);
      expect(status).toBe(200);
      errors.push(body.error);
      await new Promise((resolve) => setTimeout(resolve, 350));
    }
    return errors;
  }

  it('fails each attempt within half the timeout, since no INFO came, and closes every socket it opened', async () => {
    const tarpit = await startTarpit();
    onTestFinished(() => tarpit.close());
    const server = await app({ timeout: 1_000 });
    const id = await subscribe(server, { servers: tarpit.server, subject: 'herald-test.tarpit.{type}' });
    const errors = await testErrors(server, id, 3);
    for (const error of errors) expect(error).toMatch(new RegExp(`^cannot connect to NATS at ${tarpit.server}: no INFO from ${tarpit.server} within (4\\d\\d|500) ms \\(TIMEOUT\\)$`));
    expect(tarpit.accepted()).toBe(3);
    await waitFor(() => tarpit.open() === 0, 'every socket of the attempts closed', 2_000);
  });

  it('closes the socket of a connection that nats.js gave up on: the server sent the INFO once, then nothing', async () => {
    const tarpit = await startTarpit('info-once');
    onTestFinished(() => tarpit.close());
    const server = await app({ timeout: 1_000 });
    const id = await subscribe(server, { servers: tarpit.server, subject: 'herald-test.tarpit.{type}' });
    expect(await testErrors(server, id, 2)).toEqual([
      expect.stringMatching(
        new RegExp(`^cannot connect to NATS at ${tarpit.server}: the connection was not made within \\d+ ms \\(TIMEOUT\\): the server's INFO, or its answer to CONNECT did not come in time$`),
      ),
      expect.stringMatching(/no INFO from .* \(TIMEOUT\)$/),
    ]);
    expect(tarpit.accepted()).toBe(3);
    await waitFor(() => tarpit.open() === 0, 'every socket of the attempts closed', 2_000);
  });

  it('drops a connection the server cut, dials nothing until the next attempt, and abandons a TLS handshake that stalls within the timeout, closing its socket', async () => {
    const stream = await consumer();
    const relay = await startTcpRelay(natsServer);
    onTestFinished(() => relay.close());
    const logger = recordingLogger();
    const server = await app({ timeout: 1_000, retrySchedule: [0, 0.3, 0.3, 60] }, allowPrivate, logger);
    const id = await subscribe(server, { servers: relay.address, subject: `${stream.prefix}.{type}` });
    await publishNumbered(server, 1);
    await waitFor(() => stream.received.length === 1, 'the event through the relay');
    // The server goes, and another takes its address that requires TLS and never completes the handshake.
    await relay.close();
    const stall = await startTarpit('tls-stall', { port: Number(relay.address.split(':')[1]) });
    onTestFinished(() => stall.close());
    await waitFor(() => logger.entries.some((entry) => entry.message === 'the NATS connection closed'), 'the connection closed rather than reconnecting', 5_000);
    const before = stall.accepted();
    const [event] = await publishNumbered(server, 1);
    const failed = async () => (await server.api('GET', `/v1/subscriptions/${id}/deliveries`)).body.data.find((delivery: { eventId: string }) => delivery.eventId === event?.id)?.attempts ?? [];
    await waitFor(async () => (await failed()).length === 3, 'three attempts', 10_000);
    for (const attempt of (await failed()) as { status: string; error: string; durationMs: number }[]) {
      expect(attempt.status).toBe('failed');
      expect(attempt.error).toMatch(
        new RegExp(`^cannot connect to NATS at ${stall.server}: the connection was not made within \\d+ ms \\(TIMEOUT\\): the server's INFO, the TLS handshake, or its answer to CONNECT did not come in time$`),
      );
      expect(attempt.durationMs).toBeLessThan(1_500);
    }
    // Each attempt opened two sockets, to read the INFO and to connect, and closed both; nothing dialled in between.
    await waitFor(() => stall.open() === 0, 'every socket of the attempts closed', 1_000);
    expect(stall.accepted() - before).toBe(6);
  });

  it('delivers again once the server is back after the connection dropped: the attempts meanwhile fail as refused, and the next one connects anew', async () => {
    const stream = await consumer();
    const relay = await startTcpRelay(natsServer);
    onTestFinished(() => relay.close());
    const logger = recordingLogger();
    const server = await app({ timeout: 1_000, retrySchedule: Array(60).fill(0.2) }, allowPrivate, logger);
    const id = await subscribe(server, { servers: relay.address, subject: `${stream.prefix}.{type}`, ordered: true });
    const published = (await publishNumbered(server, 2)).map((event) => event.id);
    await waitFor(() => stream.events.length === 2, 'the first events');
    await relay.cut();
    await waitFor(() => logger.entries.some((entry) => entry.message === 'the NATS connection closed'), 'the connection closed', 5_000);
    published.push(...(await publishNumbered(server, 2)).map((event) => event.id));
    const refused = async () => (await deliveryAttempts(server, id)).filter((attempt) => attempt.error?.endsWith('connection refused (CONNECTION_REFUSED)')).length;
    await waitFor(async () => (await refused()) >= 2, 'attempts refused while the server is away');
    await relay.resume();
    await waitFor(() => stream.events.length === 4, 'the events once the server is back', 10_000);
    expect(stream.events.map((event) => event.id)).toEqual(published);
    expect((await deliveryAttempts(server, id)).filter((attempt) => attempt.status === 'failed' && !attempt.error?.endsWith('(CONNECTION_REFUSED)'))).toEqual([]);
  });
});

describe('a connection whose PubAcks stop coming', () => {
  it('fails the attempt whose PubAck does not come within the timeout, and the retry publishes over a new connection; the stalled one is closed', async () => {
    const stream = await consumer();
    // The connection is set up; from the first publish on, the server's answers never reach Herald. The connection
    // stays up, and nats.js's pings (every 2 minutes, 2 unanswered) would take minutes to end it.
    const relay = await startStallingRelay({ stallOnPublish: true });
    onTestFinished(() => relay.close());
    const logger = recordingLogger();
    const server = await app({ timeout: 2_000, retrySchedule: [0, 0.2, 0.2, 0.2, 60] }, allowPrivate, logger);
    const id = await subscribe(server, { servers: relay.address, subject: `${stream.prefix}.{type}` });
    const [event] = await publishNumbered(server, 1);
    await waitFor(async () => (await deliveryAttempts(server, id)).some((attempt) => attempt.status === 'succeeded'), 'the attempt over a new connection', 10_000);
    expect(relay.stalled()).toBe(true);
    const why = noPubAck(`${stream.prefix}.order.created`, relay.address);
    expect((await deliveryAttempts(server, id)).map((attempt) => [attempt.status, attempt.error])).toEqual([
      ['failed', expect.stringMatching(why)],
      ['succeeded', null],
    ]);
    // Two connections, each with the socket Herald reads the INFO on, and the stalled one closed once its attempt is over.
    expect(relay.connections()).toBe(4);
    await waitFor(() => relay.open().length === 1, 'the stalled connection closed', 5_000);
    // The first message reached the stream too, and the retry's was dropped as a duplicate (the same Nats-Msg-Id).
    expect([...stream.ids()]).toEqual([event?.id]);
    await waitFor(() => logger.entries.some((entry) => entry.message === 'the NATS connection closed'), 'the close logged');
    const logged = logger.entries.filter((entry) => entry.level === 'warn').map(({ message, fields }) => [message, fields.servers, fields.error]);
    expect(logged).toEqual([
      ['no PubAck from NATS in time: new publishes go to a new connection, and this one closes once the publishes on it have settled', [relay.address], expect.stringMatching(why)],
      ['the NATS connection closed', [relay.address], undefined],
    ]);
  });

  it('takes a connection whose PubAck came too late out of the pool, yet the publishes still on it get their PubAcks, and closes it once they have', async () => {
    const stream = await consumer();
    const relay = await startStallingRelay();
    onTestFinished(() => relay.close());
    const logger = recordingLogger();
    const pool = new NatsPool({ allowPrivate: true, logger });
    onTestFinished(() => pool.close());
    const publish = (id: string, timeout: number) =>
      pool.publish([relay.address], { subject: `${stream.prefix}.order.created`, body: new TextEncoder().encode(JSON.stringify({ id })), msgID: id, seq: 1, deadline: Date.now() + timeout });
    expect(await publish('first', 10_000)).toBe(stream.stream);
    // The server is slow, not gone: its answers on that connection come, but only once released.
    relay.hold('server-to-client');
    const slow = publish('slow', 500);
    const patient = publish('patient', 60_000);
    const why = noPubAck(`${stream.prefix}.order.created`, relay.address);
    await expect(slow).rejects.toThrow(why);
    // The next publish goes over a new connection (and a socket to read the INFO on), while the one before stays open
    // for the publish still waiting on it.
    expect(await publish('fresh', 10_000)).toBe(stream.stream);
    expect([relay.connections(), relay.open().length]).toEqual([4, 2]);
    relay.release();
    await expect(patient).resolves.toBe(stream.stream);
    await waitFor(() => relay.open().length === 1, 'the connection taken out closed, once its last publish settled', 5_000);
    await waitFor(() => stream.ids().size === 4, 'every message');
    await waitFor(() => logger.entries.some((entry) => entry.message === 'the NATS connection closed'), 'the close logged');
    const logged = logger.entries.filter((entry) => entry.level === 'warn').map(({ message, fields }) => [message, fields.error, fields.publishing]);
    expect(logged).toEqual([
      ['no PubAck from NATS in time: new publishes go to a new connection, and this one closes once the publishes on it have settled', expect.stringMatching(why), 2],
      ['the NATS connection closed', undefined, undefined],
    ]);
  });
});

describe('a server slow to connect', () => {
  it('keeps a new connection whose PubAck wait connecting cut short: the attempt fails saying so, and the retry publishes on it', async () => {
    const stream = await consumer();
    // Each answer takes 1600 ms: the INFO Herald reads, then nats.js's INFO and the PONG to its CONNECT take at least
    // 4800 ms of the 6000 ms timeout, which leaves the PubAck at most 1200, and it takes 1600 (a busy machine has 1200 ms
    // to spare for the connecting). The connection is healthy: the retry, which publishes on it, waits up to 6000 ms.
    // Were it taken out, each attempt would connect as slowly, and fail again.
    const relay = await startSlowRelay(1_600);
    onTestFinished(() => relay.close());
    const logger = recordingLogger();
    const server = await app({ timeout: 6_000, retrySchedule: [0, 0.2, 60] }, allowPrivate, logger);
    const id = await subscribe(server, { servers: relay.address, subject: `${stream.prefix}.{type}` });
    const [event] = await publishNumbered(server, 1);
    await waitFor(async () => (await deliveryAttempts(server, id)).some((attempt) => attempt.status === 'succeeded'), 'the retry on the same connection', 20_000);
    const why = noPubAck(`${stream.prefix}.order.created`, relay.address, ", as connecting took (4[89]|5\\d)\\d\\d ms of the attempt's 6000 ms: the connection is kept for the next attempt");
    expect((await deliveryAttempts(server, id)).map((attempt) => [attempt.status, attempt.error])).toEqual([
      ['failed', expect.stringMatching(why)],
      ['succeeded', null],
    ]);
    // One connection, and the socket Herald read the INFO on.
    expect(relay.connections()).toBe(2);
    expect(relay.open()).toHaveLength(1);
    expect([...stream.ids()]).toEqual([event?.id]);
    expect(logger.entries.filter((entry) => entry.level === 'warn')).toEqual([]);
  }, 60_000);
});

describe('a restart of the NATS server', () => {
  it('loses nothing: attempts fail while the server is down, and every event arrives once it is back (default subject herald.{type})', async () => {
    // The test's own nats-server on a port of its own, with its own store: the machine's, which other work uses, is never stopped.
    const own = await startOwnNatsServer();
    onTestFinished(() => own.close());
    const stream = await startStreamConsumer(own.server);
    onTestFinished(() => stream.close());
    // The default subject: a stream capturing herald.> on the test's own server.
    const { connect } = await import('nats');
    const admin = await connect({ servers: own.server });
    await (await admin.jetstreamManager()).streams.update(stream.stream, { subjects: ['herald.>'] });
    await admin.close();

    const server = await app({ retrySchedule: Array(60).fill(1), concurrency: 5, timeout: 3_000 });
    await subscribe(server, { servers: own.server });
    const published = await publishNumbered(server, 300);
    await waitFor(() => stream.received.length >= 50, 'the first messages', 30_000);
    await own.stop();
    published.push(...(await publishNumbered(server, 300)));
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await own.start();
    await stream.reconnect();
    await waitFor(() => published.every((event) => stream.ids().has(event.id)), 'every event after the restart', 90_000);
    expect(stream.ids().size).toBe(600);
    expect(stream.received.every(({ message }) => message.subject.startsWith('herald.order.'))).toBe(true);
  }, 180_000);
});

describe('the log', () => {
  it('says it connected, with the servers, under the name of the transport (bound once)', async () => {
    const stream = await consumer();
    const logger = recordingLogger();
    const server = await app({}, allowPrivate, logger);
    await subscribe(server, { servers: natsServer, subject: `${stream.prefix}.{type}` });
    await publishNumbered(server, 1);
    await waitFor(() => stream.received.length === 1, 'the message');
    expect(logger.entries.filter((entry) => entry.message === 'connected to NATS')).toEqual([
      { level: 'info', fields: expect.objectContaining({ transport: 'nats', servers: [natsServer] }), message: 'connected to NATS' },
    ]);
    expect(logger.boundAgain).toEqual([]);
  });
});

describe('a server that moves', () => {
  it('is found at its new address: the connection to the old one closes, and the next attempt resolves the name again', async () => {
    // The server stays where it is; the name leads to it through a relay at one loopback address, then at another.
    const own = await startOwnNatsServer();
    onTestFinished(() => own.close());
    const port = Number(own.server.split(':')[1]);
    const stream = await consumer(own.server);
    const first = await startTcpRelay(own.server, { host: '127.0.0.3', port });
    onTestFinished(() => first.close());
    let answer = '127.0.0.3';
    const lookup: LookupFunction = (_hostname, options, callback) => (options.all ? callback(null, [{ address: answer, family: 4 }]) : callback(null, answer, 4));
    const server = await app({ lookup, retrySchedule: Array(60).fill(1), timeout: 2_000 });
    await subscribe(server, { servers: `nats://nats.herald.test:${port}`, subject: `${stream.prefix}.{type}`, ordered: true });
    const published = (await publishNumbered(server, 3)).map((event) => event.id);
    await waitFor(() => stream.events.length === 3, 'the events through the first address');

    // The first address answers no more; the name now resolves to the second.
    await first.close();
    const second = await startTcpRelay(own.server, { host: '127.0.0.2', port });
    onTestFinished(() => second.close());
    answer = '127.0.0.2';
    published.push(...(await publishNumbered(server, 3)).map((event) => event.id));
    await waitFor(() => stream.events.length === 6, 'the events through the second address', 60_000);
    expect(stream.events.map((event) => event.id)).toEqual(published);
    expect(second.connections()).toBeGreaterThan(0);
  }, 90_000);
});

describe('a server name that does not resolve in time', () => {
  it('fails the attempt within its timeout, saying so, connects nowhere when the answer comes late, and the next attempt publishes', async () => {
    const stream = await consumer();
    const relay = await startTcpRelay(natsServer);
    onTestFinished(() => relay.close());
    const servers = [`nats.herald.test:${relay.address.split(':')[1]}`];
    // A real resolver asks a DNS server of the test's own, which answers the first query only after the attempt's timeout.
    const dns = await startTestDnsServer({ address: '127.0.0.1', delay: 2_000 });
    onTestFinished(() => dns.close());
    const resolver = resolverLookup(dns.server);
    onTestFinished(() => resolver.cancel());
    const pool = new NatsPool({ allowPrivate: true, lookup: resolver.lookup, connectTimeout: 1_000 });
    onTestFinished(() => pool.close());
    const message = (seq: number) => ({ subject: `${stream.prefix}.order.created`, body: new TextEncoder().encode('{}'), msgID: `msg-${seq}`, seq, deadline: Date.now() + 1_000 });
    const notResolved = /^cannot connect to NATS at nats\.herald\.test:\d+: the name nats\.herald\.test was not resolved within \d+ ms \(ETIMEOUT\)$/;

    const started = Date.now();
    await expect(pool.publish(servers, message(1))).rejects.toThrow(notResolved);
    // Its 1000 ms, not the 2000 of the answer (some to spare for a busy machine).
    expect(Date.now() - started).toBeLessThan(1_800);
    await waitFor(() => dns.answered() === 1, 'the late answer');
    await linger(200);
    expect(relay.connections()).toBe(0);

    // Behind the address guard too (it would refuse 127.0.0.1, were the name resolved): a server that never answers.
    dns.answer('never');
    const guarded = new NatsPool({ lookup: resolver.lookup, connectTimeout: 1_000 });
    onTestFinished(() => guarded.close());
    await expect(guarded.publish(servers, message(2))).rejects.toThrow(notResolved);

    dns.answer({ address: '127.0.0.1' });
    expect(await pool.publish(servers, message(3))).toBe(stream.stream);
    // The socket Herald reads the INFO on, and the connection's.
    expect(relay.connections()).toBe(2);
    expect(dns.queries()).toBe(3);
  });
});

describe('the servers', () => {
  it('never shows credentials in the API or the errors', async () => {
    const server = await app({ retrySchedule: [0, 60] });
    const key = await server.consumerKey('acme');
    const config = { servers: ['nats://herald:pa55-w0rd-secret@127.0.0.1:1', 'nats://t0ken-secret@127.0.0.1:2'], subject: 'x.{type}' };
    const created = await server.api('POST', '/v1/subscriptions', { transport: 'nats', types: ['**'], config }, key);
    expect(created.status).toBe(201);
    expect(created.body.config.servers).toEqual(['nats://herald:***@127.0.0.1:1', 'nats://***@127.0.0.1:2']);
    await publishNumbered(server, 1);
    await waitFor(async () => (await deliveryAttempts(server, created.body.id)).length === 1, 'the failed attempt');
    const shown = JSON.stringify([
      (await server.api('GET', `/v1/subscriptions/${created.body.id}`, undefined, key)).body,
      (await server.api('GET', `/v1/subscriptions/${created.body.id}/deliveries`, undefined, key)).body,
    ]);
    expect(shown).toContain('connection refused');
    expect(shown).not.toMatch(/pa55-w0rd-secret|t0ken-secret/);
  });

  it('refuses loopback and private servers with a 422 unless HERALD_ALLOW_PRIVATE=1 or allowPrivate, and bad subjects always', async () => {
    const strict = await app({}, {});
    const key = await strict.consumerKey('acme');
    const create = (target: TestApp, config: unknown, as = key) => target.api('POST', '/v1/subscriptions', { transport: 'nats', types: ['**'], config }, as);
    for (const servers of ['127.0.0.1:4222', 'nats://[::1]:4222', ['nats.example.com', '10.1.2.3:4222'], 'tls://localhost', '169.254.169.254']) {
      const { status, body } = await create(strict, { servers });
      expect(status, JSON.stringify(servers)).toBe(422);
      expect(body.errors[0].path.slice(0, 2)).toEqual(['config', 'servers']);
    }
    for (const config of [{ servers: 'http://nats.example.com' }, { servers: [] }, { servers: 'nats.example.com', subject: 'a.*' }, { servers: 'nats.example.com', subject: 'a b' }, { servers: 'nats.example.com', subject: 'a..b' }, {}]) {
      expect((await create(strict, config)).status, JSON.stringify(config)).toBe(422);
    }
    expect((await create(strict, { servers: 'nats.example.com:4222' })).status).toBe(201);
    for (const [options, env] of [
      [{}, { HERALD_ALLOW_PRIVATE: '1' }],
      [{}, { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' }],
      [{ allowPrivate: true }, {}],
    ] as const) {
      const open = await app(options, env);
      expect((await create(open, { servers: natsServer }, await open.consumerKey('acme'))).status, JSON.stringify(env)).toBe(201);
    }
  });

  it('keeps the stored password or token when a PATCH sends the servers back as the API shows them; a *** that stands for none is a 422', async () => {
    const [withPassword, withToken] = await Promise.all([startOwnNatsServer({ auth: { user: 'herald', pass: 'pa55-w0rd' } }), startOwnNatsServer({ auth: { token: 't0ken-secret' } })]);
    onTestFinished(() => Promise.all([withPassword.close(), withToken.close()]).then(() => {}));
    const streams = await Promise.all([startStreamConsumer(withPassword.server, withPassword.clientOptions), startStreamConsumer(withToken.server, withToken.clientOptions)]);
    onTestFinished(() => Promise.all(streams.map((stream) => stream.close())).then(() => {}));
    const server = await app({ retrySchedule: [0, 60] });
    const key = await server.consumerKey('acme');
    const given = [`nats://herald:pa55-w0rd@${withPassword.server}`, `nats://t0ken-secret@${withToken.server}`];
    const shown = [`nats://herald:***@${withPassword.server}`, `nats://***@${withToken.server}`];
    const ids: string[] = [];
    for (const [index, servers] of given.entries()) {
      const created = await server.api('POST', '/v1/subscriptions', { transport: 'nats', types: ['**'], config: { servers, subject: `${streams[index]?.prefix}.{type}` } }, key);
      expect(created.body.config.servers).toBe(shown[index]);
      // As a client that edits the subscription it read sends it back: the servers as shown, and a change.
      const patched = await server.api('PATCH', `/v1/subscriptions/${created.body.id}`, { config: { ...created.body.config, ordered: true } }, key);
      expect(patched.status).toBe(200);
      expect(patched.body.config).toMatchObject({ servers: shown[index], ordered: true });
      ids.push(created.body.id);
    }
    const published = (await publishNumbered(server, 2)).map((event) => event.id);
    for (const [index, id] of ids.entries()) await expectDeliveredInOrder(server, id, () => streams[index]?.events ?? [], published);

    // A *** for another server, or another user, or on create, stands for nothing stored.
    const refusals = [
      ['PATCH', `/v1/subscriptions/${ids[0]}`, { config: { servers: `nats://herald:***@127.0.0.1:1` } }, ['config', 'servers'], 'password of herald', 'nats://herald:***@127.0.0.1:1'],
      ['PATCH', `/v1/subscriptions/${ids[0]}`, { config: { servers: [`nats://other:***@${withPassword.server}`] } }, ['config', 'servers', 0], 'password of other', `nats://other:***@${withPassword.server}`],
      ['POST', '/v1/subscriptions', { transport: 'nats', types: ['**'], config: { servers: shown[1] } }, ['config', 'servers'], 'token', shown[1]],
    ] as const;
    for (const [method, path, body, at, what, listed] of refusals) {
      const { status, body: problem } = await server.api(method, path, body, key);
      expect(status, JSON.stringify(body)).toBe(422);
      expect(problem.errors).toEqual([
        { path: at, message: `*** stands for the ${what} stored for this server, and none is stored for ${listed}: give the ${what === 'token' ? 'token' : 'password'} itself` },
      ]);
    }
  });

  it('says what it wants of servers, and refuses system subjects ($JS., $SYS., ..., _INBOX.), with a 422 at the field', async () => {
    const server = await app();
    const key = await server.consumerKey('acme');
    const create = (config: unknown) => server.api('POST', '/v1/subscriptions', { transport: 'nats', types: ['**'], config }, key);
    for (const servers of [undefined, 4222, Array(11).fill(natsServer), []]) {
      const { status, body } = await create(servers === undefined ? {} : { servers });
      expect(status, JSON.stringify(servers)).toBe(422);
      expect(body.errors, JSON.stringify(servers)).toEqual([
        expect.objectContaining({ path: ['config', 'servers'], message: 'must be a server (host:port, or a nats:// or tls:// URL) or a list of 1 to 10 servers of one cluster' }),
      ]);
    }
    for (const subject of ['$JS.API.STREAM.PURGE.WALKDEL', '$SYS.REQ.SERVER.PING', '$KV.bucket.{type}', '$O.store.{type}', '_INBOX.abc.{type}']) {
      const { status, body } = await create({ servers: natsServer, subject });
      expect(status, subject).toBe(422);
      expect(body.errors, subject).toEqual([expect.objectContaining({ path: ['config', 'subject'], message: expect.stringMatching(/^must not be a system subject: /) })]);
    }
    expect((await create({ servers: natsServer, subject: 'JS.inbox.{type}' })).status).toBe(201);
  });

  it('refuses at connect time a public-looking server name that resolves to 127.0.0.1 (DNS rebinding)', async () => {
    const stream = await consumer();
    const rebinding: LookupFunction = (_hostname, options, callback) =>
      options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4);
    const server = await app({ lookup: rebinding, retrySchedule: [0, 60] }, {});
    const id = await subscribe(server, { servers: 'nats.rebind.example:4222', subject: `${stream.prefix}.{type}` });
    await publishNumbered(server, 1);
    await waitFor(async () => (await deliveryAttempts(server, id)).length === 1, 'the first attempt');
    expect((await deliveryAttempts(server, id))[0]?.error).toMatch(/nats\.rebind\.example resolves to a loopback address/);
    expect(stream.received).toHaveLength(0);
  });
});

describe('a NATS server that requires TLS', () => {
  it('takes the events over tls:// from a Herald process that trusts its private authority (NODE_EXTRA_CA_CERTS); without it, the attempt fails for the certificate and nothing arrives', async () => {
    // The test's own nats-server, requiring TLS, with a certificate for localhost that the test authority signed.
    const own = await startOwnNatsServer({ tls: true });
    onTestFinished(() => own.close());
    expect(own.server).toMatch(/^tls:\/\/localhost:\d+$/);
    // Consumers that connect over TLS, trusting the test authority themselves.
    const [trusted, untrusted] = await Promise.all([startStreamConsumer(own.server, own.clientOptions), startStreamConsumer(own.server, own.clientOptions)]);
    onTestFinished(() => Promise.all([trusted.close(), untrusted.close()]).then(() => {}));
    // Node reads NODE_EXTRA_CA_CERTS only when a process starts: two Herald processes, the same but for it.
    const [trusting, distrusting] = await Promise.all([startPushNodeProcess(transportModule, 'nats', { NODE_EXTRA_CA_CERTS: testTls.ca }), startPushNodeProcess(transportModule, 'nats', { NODE_EXTRA_CA_CERTS: undefined })]);

    const toTrusted = await subscribe(trusting, { servers: own.server, subject: `${trusted.prefix}.{type}`, ordered: true });
    const toUntrusted = await subscribe(distrusting, { servers: own.server, subject: `${untrusted.prefix}.{type}` });
    const [published, [refused]] = await Promise.all([publishOverRest(trusting, 20), publishOverRest(distrusting, 1)]);

    await expectDeliveredInOrder(trusting, toTrusted, () => trusted.events, published);
    expect(trusted.received.every(({ message }) => message.subject === `${trusted.prefix}.order.created`)).toBe(true);

    // Without the authority: TLS refuses the certificate, so nothing is sent, and the attempt says why.
    expect(await onlyFailedAttempt(distrusting, toUntrusted, refused as string)).toBe(
      `cannot connect to NATS at ${own.server}: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
    );
    expect(untrusted.received).toHaveLength(0);
  });

  it('with `tls: { ca }`, takes the events in order over tls://localhost and over nats://localhost (an upgrade the server requires), each connection made to the address of one lookup; and over nats:// from a server without TLS', async () => {
    const own = await startOwnNatsServer({ tls: true });
    onTestFinished(() => own.close());
    const { port } = new URL(own.server);
    const [overTls, upgraded] = await Promise.all([startStreamConsumer(own.server, own.clientOptions), startStreamConsumer(own.server, own.clientOptions)]);
    onTestFinished(() => Promise.all([overTls.close(), upgraded.close()]).then(() => {}));
    const plain = await consumer();
    // The test's nats-server listens on 127.0.0.1 only.
    const lookedUp: string[] = [];
    const lookup: LookupFunction = (hostname, options, callback) => {
      lookedUp.push(hostname);
      return options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4);
    };
    const server = await app({ tls: { ca: readFileSync(testTls.ca) }, lookup });

    const toTls = await subscribe(server, { servers: `tls://localhost:${port}`, subject: `${overTls.prefix}.{type}`, ordered: true });
    const toUpgraded = await subscribe(server, { servers: `nats://localhost:${port}`, subject: `${upgraded.prefix}.{type}`, ordered: true });
    const toPlain = await subscribe(server, { servers: `nats://${natsServer}`, subject: `${plain.prefix}.{type}`, ordered: true });
    const published = (await publishNumbered(server, 20)).map((event) => event.id);

    await expectDeliveredInOrder(server, toTls, () => overTls.events, published);
    await expectDeliveredInOrder(server, toUpgraded, () => upgraded.events, published);
    await expectDeliveredInOrder(server, toPlain, () => plain.events, published);
    // One connection for each list of servers, each to the address its one lookup answered.
    expect(lookedUp).toEqual(['localhost', 'localhost']);
  });

  it('checks the certificate against the name the server is listed by, not the address dialled: a name that resolves to the server but is not in its certificate is refused, over tls:// and nats://', async () => {
    const own = await startOwnNatsServer({ tls: true });
    onTestFinished(() => own.close());
    const { port } = new URL(own.server);
    const stream = await startStreamConsumer(own.server, own.clientOptions);
    onTestFinished(() => stream.close());
    // nats.herald.test is no name outside this lookup (.test is reserved): a connection that got as far as the certificate
    // went to the address the lookup answered. That address, 127.0.0.1, is in the certificate: only the name fails.
    const lookup: LookupFunction = (_hostname, options, callback) => (options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4));
    const server = await app({ tls: { ca: readFileSync(testTls.ca) }, lookup, retrySchedule: [0, 60] });

    const servers = [`tls://nats.herald.test:${port}`, `nats://nats.herald.test:${port}`];
    const ids = await Promise.all(servers.map((listed) => subscribe(server, { servers: listed, subject: `${stream.prefix}.{type}` })));
    const [event] = await publishNumbered(server, 1);
    for (const [index, listed] of servers.entries()) {
      expect(await onlyFailedAttempt(server, ids[index] as string, event?.id as string)).toBe(
        `cannot connect to NATS at ${listed}: Hostname/IP does not match certificate's altnames: Host: nats.herald.test. is not in the cert's altnames: DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1 (ERR_TLS_CERT_ALTNAME_INVALID)`,
      );
    }
    expect(stream.received).toHaveLength(0);
  });

  it('closes the socket of a dial whose TLS handshake stalled once the connection is made to the next server, not when the connection closes', async () => {
    const own = await startOwnNatsServer({ tls: true });
    onTestFinished(() => own.close());
    const stream = await startStreamConsumer(own.server, own.clientOptions);
    onTestFinished(() => stream.close());
    const stall = await startTarpit('tls-stall');
    onTestFinished(() => stall.close());
    const servers = [`tls://localhost:${stall.server.split(':')[1]}`, own.server];
    const lookup: LookupFunction = (_hostname, options, callback) => (options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4));
    // nats.js dials the servers in a random order: connections are made until one dialled the stalling server first.
    let dialled = false;
    for (let round = 1; !dialled; round++) {
      expect(round, 'a connection that dialled the stalling server first').toBeLessThanOrEqual(20);
      const before = stall.accepted();
      const pool = new NatsPool({ allowPrivate: true, lookup, tls: { ca: readFileSync(testTls.ca) }, connectTimeout: 2_000 });
      onTestFinished(() => pool.close());
      const message = { subject: `${stream.prefix}.order.created`, body: new TextEncoder().encode('{}'), msgID: `msg-${round}`, seq: round, deadline: Date.now() + 2_000 };
      expect(await pool.publish(servers, message)).toBe(stream.stream);
      // The INFO is read from the first server listed, the stalling one, on a socket of its own; a second socket is a dial.
      dialled = stall.accepted() - before === 2;
      // The stalled dial's socket is closed while the connection is open.
      if (dialled) await waitFor(() => stall.open() === 0, 'the stalled dial closed', 1_000);
      await pool.close();
    }
  });

  it('requires TLS of a nats:// server too unless private targets are allowed: one with TLS is reached over it, one without fails the attempt and is sent nothing in the clear, credentials included; with them allowed, it is reached in the clear as before', async () => {
    const own = await startOwnNatsServer({ tls: true });
    onTestFinished(() => own.close());
    const overTls = await startStreamConsumer(own.server, own.clientOptions);
    onTestFinished(() => overTls.close());
    const plain = await consumer();
    // The machine's NATS offers no TLS, as a server whose INFO someone on the way rewrote seems to: the relay sees what Herald sends it.
    const sent: Buffer[] = [];
    const relay = await startTcpRelay(natsServer, { onConnection: () => ({ fromClient: (chunk) => void sent.push(chunk) }) });
    onTestFinished(() => relay.close());
    const plaintext = [`nats://herald:pa55-w0rd-secret@${relay.address}`];
    const message = (prefix: string, seq: number) => ({ subject: `${prefix}.order.created`, body: new TextEncoder().encode('{}'), msgID: uniqueName(), seq, deadline: Date.now() + 5_000 });
    const lookup: LookupFunction = (_hostname, options, callback) => (options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4));

    // As without private targets (which the test's servers, on 127.0.0.1, are not), but with the guard off.
    const requiring = new NatsPool({ allowPrivate: true, requireTls: true, lookup, tls: { ca: readFileSync(testTls.ca) }, connectTimeout: 5_000 });
    onTestFinished(() => requiring.close());
    expect(await requiring.publish([`nats://localhost:${new URL(own.server).port}`], message(overTls.prefix, 1))).toBe(overTls.stream);
    await expect(requiring.publish(plaintext, message(plain.prefix, 1))).rejects.toMatchObject({
      message: `cannot connect to NATS at nats://herald:***@${relay.address}: the server does not offer TLS, which Herald requires (SERVER_OPT_NA)`,
    });
    // Herald read the INFO and sent nothing: no CONNECT, no credentials.
    expect(relay.connections()).toBe(2);
    expect(Buffer.concat(sent).length).toBe(0);
    expect(plain.received).toHaveLength(0);

    const allowing = new NatsPool({ allowPrivate: true });
    onTestFinished(() => allowing.close());
    expect(await allowing.publish(plaintext, message(plain.prefix, 1))).toBe(plain.stream);
    await waitFor(() => plain.received.length === 1, 'the message sent in the clear');
  });

  it('presents the client certificate of `tls: { cert, key }` to a server that requires one; without it, no connection is made', async () => {
    const own = await startOwnNatsServer({ tls: true, clientCertificate: true });
    onTestFinished(() => own.close());
    const stream = await startStreamConsumer(own.server, own.clientOptions);
    onTestFinished(() => stream.close());
    const ca = readFileSync(testTls.ca);
    const [presenting, withoutCertificate] = await Promise.all([app({ tls: { ca, cert: readFileSync(testTls.cert), key: readFileSync(testTls.key) } }), app({ tls: { ca }, retrySchedule: [0, 60], timeout: 2_000 })]);

    const delivered = await subscribe(presenting, { servers: own.server, subject: `${stream.prefix}.{type}`, ordered: true });
    const refused = await subscribe(withoutCertificate, { servers: own.server, subject: `${stream.prefix}.refused.{type}` });
    const published = (await publishNumbered(presenting, 5)).map((event) => event.id);
    const [unsent] = await publishNumbered(withoutCertificate, 1);

    await expectDeliveredInOrder(presenting, delivered, () => stream.events, published);
    // The server sends TLS's alert once it has refused the client, and closes the connection: the connect fails with
    // the alert, or, when the reset is read before it (a loaded machine), with the reset.
    const failure = await onlyFailedAttempt(withoutCertificate, refused, unsent?.id as string);
    expect([
      `cannot connect to NATS at ${own.server}: the server refused the TLS handshake, wanting a client certificate it trusts: sslv3 alert bad certificate (ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE)`,
      `cannot connect to NATS at ${own.server}: read ECONNRESET`,
    ]).toContain(failure);
    expect(stream.received).toHaveLength(published.length);
  });
});
