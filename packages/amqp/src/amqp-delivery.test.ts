import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Logger } from '@herald/core';
import type { LookupFunction } from '@herald/outbox';
import { type AttemptView, deliveryAttempts, publishNumbered, type RestClient, recordingLogger, startTestApp, subscribeConsumer, type TestApp, waitFor } from '@herald/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';
import { resolverLookup, startTestDnsServer } from '../../outbox/src/dns-server.test-support.js';
import { expectDeliveredInOrder, onlyFailedAttempt, publishOverRest, startPushNodeProcess } from '../../testkit/src/push-node-process.test-support.js';
import { testTls } from '../../webhook/src/test-tls.test-support.js';
import { brokerUrl, type QueueConsumer, startAmqpsProxy, startConsumer, startSlowRelay, startStallingRelay, startTarpit, uniqueName } from './amqp-broker.test-support.js';
import { redactedUrl } from './amqp-config.js';
import { AmqpPool, AmqpPublishError } from './amqp-pool.js';
import { type AmqpOptions, amqp } from './amqp-transport.js';

const run = promisify(execFile);
const allowPrivate = { HERALD_ALLOW_PRIVATE: '1' };
async function app(options: AmqpOptions = {}, env: Record<string, string> = allowPrivate, logger?: Logger): Promise<TestApp> {
  const started = await startTestApp([amqp({ pollInterval: 50, ...options })], { env, ...(logger ? { logger } : {}) });
  onTestFinished(() => started.close());
  return started;
}

async function consumer(options: Parameters<typeof startConsumer>[0] = {}): Promise<QueueConsumer> {
  const started = await startConsumer(options);
  onTestFinished(() => started.close());
  return started;
}

const subscribe = async (target: RestClient, config: Record<string, unknown>, types?: string[]) => (await subscribeConsumer(target, 'amqp', config, { types })).id;

/** The transport, for Herald nodes in processes of their own. */
const transportModule = new URL('./amqp-transport.ts', import.meta.url);

describe('messages', () => {
  it('publishes each event as one persistent message: the envelope as CloudEvents JSON, its id, type, time and seq as properties', async () => {
    const queue = await consumer();
    const server = await app();
    await subscribe(server, { url: brokerUrl, exchange: queue.exchange });
    const [event] = await publishNumbered(server, 1);
    await waitFor(() => queue.received.length === 1, 'the message');
    const { message } = queue.received[0] as (typeof queue.received)[number];
    expect(JSON.parse(message.content.toString('utf8'))).toEqual(JSON.parse(JSON.stringify(event)));
    expect(message.fields).toMatchObject({ exchange: queue.exchange, routingKey: 'order.created' });
    expect(message.properties).toMatchObject({
      deliveryMode: 2,
      contentType: 'application/cloudevents+json',
      messageId: event?.id,
      type: 'order.created',
      timestamp: Math.floor(Date.parse(event?.time as string) / 1000),
      headers: { 'herald-seq': event?.seq },
    });
    expect(message.properties.headers).not.toHaveProperty('herald-test');
  });

  it('sends a test event (POST /v1/subscriptions/:id/test) as a message like the others, with seq 0, an evt_test_ id and the header herald-test: 1', async () => {
    const queue = await consumer();
    const server = await app();
    const key = await server.consumerKey('acme');
    const created = await server.api('POST', '/v1/subscriptions', { transport: 'amqp', types: ['order.*'], config: { url: brokerUrl, exchange: queue.exchange } }, key);
    const { status, body } = await server.api('POST', `/v1/subscriptions/${created.body.id}/test`, {}, key);
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ status: 'succeeded', error: null, event: { seq: 0, id: expect.stringMatching(/^evt_test_/) } });
    await waitFor(() => queue.received.length === 1, 'the test message');
    const { event, message } = queue.received[0] as (typeof queue.received)[number];
    expect(event).toEqual(body.event);
    expect(message.fields.routingKey).toBe(body.event.type);
    expect(message.properties).toMatchObject({ messageId: body.event.id, type: body.event.type, headers: { 'herald-seq': 0, 'herald-test': 1 } });
  });

  it('routes by the event type unless the config names a routing key', async () => {
    const byType = await consumer({ pattern: 'invoice.*' });
    const fixed = await consumer({ pattern: 'billing' });
    const server = await app();
    await subscribe(server, { url: brokerUrl, exchange: byType.exchange });
    await subscribe(server, { url: brokerUrl, exchange: fixed.exchange, routingKey: 'billing' });
    const events = [...(await publishNumbered(server, 2)), ...(await publishNumbered(server, 3, 'invoice.paid'))];
    const invoices = events.filter((event) => event.type === 'invoice.paid').map((event) => event.id);
    await waitFor(() => fixed.received.length === 5 && byType.received.length === 3, 'both queues');
    expect([...byType.ids()].sort()).toEqual([...invoices].sort());
    expect(fixed.received.every(({ message }) => message.fields.routingKey === 'billing')).toBe(true);
  });

  it('delivers 1,000 events, none lost and none twice', async () => {
    const queue = await consumer();
    const server = await app({ concurrency: 20 });
    await subscribe(server, { url: brokerUrl, exchange: queue.exchange });
    const published = await publishNumbered(server, 1000);
    await waitFor(() => queue.ids().size === 1000, '1,000 events', 60_000);
    expect([...queue.ids()].sort()).toEqual(published.map((event) => event.id).sort());
    expect(queue.received).toHaveLength(1000);
  }, 90_000);
});

describe('failed attempts', () => {
  it('fails an attempt to a missing exchange, a broker that refuses connections and a nack, with a clear error, and retries', async () => {
    const server = await app({ retrySchedule: [0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2] });
    const missing = uniqueName('missing');
    const toMissing = await subscribe(server, { url: brokerUrl, exchange: missing });
    const toNowhere = await subscribe(server, { url: 'amqp://guest:s3cret-pass@127.0.0.1:1/', exchange: 'x' });
    // A queue that holds one message and refuses the next: the broker nacks it.
    const full = await consumer({ queueArguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
    const toFull = await subscribe(server, { url: brokerUrl, exchange: full.exchange });
    await publishNumbered(server, 1);
    const failedTwice = async (id: string) => (await deliveryAttempts(server, id)).filter((attempt) => attempt.status === 'failed').length >= 2;
    await waitFor(async () => (await failedTwice(toMissing)) && (await failedTwice(toNowhere)) && (await failedTwice(toFull)), 'attempts retried');
    expect((await deliveryAttempts(server, toMissing))[0]?.error).toMatch(new RegExp(`the exchange "${missing.replaceAll('.', '\\.')}" does not exist on amqp://guest@127\\.0\\.0\\.1:5672.*NOT.FOUND`));
    const refused = (await deliveryAttempts(server, toNowhere))[0]?.error;
    expect(refused).toMatch(/cannot connect to amqp:\/\/guest@127\.0\.0\.1:1\/: connection refused \(ECONNREFUSED\)/);
    expect(refused).not.toContain('s3cret');
    expect((await deliveryAttempts(server, toFull))[0]?.error).toMatch(/the broker refused the message \(nack\)/);
  });

  it('fails an attempt to a broker that takes the connection and never answers with "the connection was not made", as the log says, and closes the socket', async () => {
    const logger = recordingLogger();
    const server = await app({ timeout: 1_000, retrySchedule: [0, 60] }, allowPrivate, logger);
    // One says nothing (amqplib's idle timeout would end it); one sends a byte every 100 ms, so that its socket is never idle.
    const tarpits = await Promise.all([startTarpit(), startTarpit({ dribble: true })]);
    for (const tarpit of tarpits) onTestFinished(() => tarpit.close());
    const ids = await Promise.all(tarpits.map((tarpit) => subscribe(server, { url: `amqp://guest:guest@127.0.0.1:${tarpit.port}`, exchange: 'orders' })));
    await publishNumbered(server, 1);
    for (const [index, tarpit] of tarpits.entries()) {
      const id = ids[index] as string;
      await waitFor(async () => (await deliveryAttempts(server, id)).length === 1, 'the attempt');
      const broker = `amqp://guest@127.0.0.1:${tarpit.port}`;
      const why = 'the connection was not made within 1000 ms (ETIMEDOUT)';
      expect((await deliveryAttempts(server, id))[0]?.error).toBe(`cannot connect to ${broker}: ${why}`);
      const logged = logger.entries.filter((entry) => entry.fields.broker === broker).map((entry) => [entry.message, entry.fields.error]);
      expect(logged).toEqual([['cannot connect to the AMQP broker', why]]);
      expect(tarpit.accepted).toBe(1);
      // Closed once the attempt has failed: the tarpit sees the close a moment later.
      await waitFor(() => tarpit.open === 0, 'the socket closed', 1_000);
    }
  });

  it('fails an attempt whose broker name is not resolved in time with "the name was not resolved", as the log says, with the address guard on or off', async () => {
    const queue = await consumer();
    // A real resolver asks a DNS server of the test's own, which does not answer.
    const dns = await startTestDnsServer('never');
    onTestFinished(() => dns.close());
    const resolver = resolverLookup(dns.server);
    onTestFinished(() => resolver.cancel());
    const logger = recordingLogger();
    const pool = new AmqpPool({ allowPrivate: true, lookup: resolver.lookup, connectTimeout: 1_000, logger });
    onTestFinished(() => pool.close());
    const destination = { url: 'amqp://guest:guest@rabbit.herald.test:5672', exchange: queue.exchange, routingKey: 'order.created' };
    const publish = (target: AmqpPool, timeout?: number) => target.publish(destination, Buffer.from('{}'), {}, timeout === undefined ? {} : { timeout });
    const notResolved = (ms: number) => `the name rabbit.herald.test was not resolved within ${ms} ms (ETIMEOUT)`;
    const broker = 'amqp://guest@rabbit.herald.test:5672';

    // Ended by the connect timeout, and by the attempt's own, shorter.
    const started = Date.now();
    await expect(publish(pool)).rejects.toThrow(new AmqpPublishError(`cannot connect to ${broker}: ${notResolved(1_000)}`));
    expect(Date.now() - started).toBeLessThan(1_800);
    await expect(publish(pool, 500)).rejects.toThrow(new AmqpPublishError(`cannot connect to ${broker}: ${notResolved(500)}`));
    expect(logger.entries.map((entry) => [entry.message, entry.fields.error])).toEqual([
      ['cannot connect to the AMQP broker', notResolved(1_000)],
      ['cannot connect to the AMQP broker', notResolved(500)],
    ]);
    // Behind the address guard too (it would refuse 127.0.0.1, were the name resolved).
    const guarded = new AmqpPool({ lookup: resolver.lookup, connectTimeout: 1_000 });
    onTestFinished(() => guarded.close());
    await expect(publish(guarded)).rejects.toThrow(new AmqpPublishError(`cannot connect to ${broker}: ${notResolved(1_000)}`));

    // A name resolved at once, on a broker that answers nothing: the connection is what was not made.
    const tarpit = await startTarpit();
    onTestFinished(() => tarpit.close());
    dns.answer({ address: '127.0.0.1' });
    const toTarpit = { ...destination, url: `amqp://guest:guest@rabbit.herald.test:${tarpit.port}` };
    await expect(pool.publish(toTarpit, Buffer.from('{}'), {})).rejects.toThrow(
      new AmqpPublishError(`cannot connect to amqp://guest@rabbit.herald.test:${tarpit.port}: the connection was not made within 1000 ms (ETIMEDOUT)`),
    );
    await publish(pool);
    await waitFor(() => queue.received.length === 1, 'the message');
  });

  it('fails an attempt whose channel the broker never opens with "the channel was not opened" within the timeout, closes that connection, and delivers on a new one', async () => {
    const queue = await consumer();
    // The first connection through it goes through the handshake, then the broker's answer to channel.open never comes.
    const relay = await startStallingRelay('channel.open');
    onTestFinished(() => relay.close());
    const logger = recordingLogger();
    const server = await app({ timeout: 1_000, retrySchedule: [0, 0.2, 0.2, 0.2, 0.2, 60] }, allowPrivate, logger);
    const id = await subscribe(server, { url: relay.url, exchange: queue.exchange });
    const [event] = await publishNumbered(server, 1);
    await waitFor(() => queue.ids().has(event?.id as string), 'the message, over a new connection', 10_000);
    expect(relay.stalled()).toBe(true);
    await waitFor(async () => (await deliveryAttempts(server, id)).some((attempt) => attempt.status === 'succeeded'), 'the attempt recorded');
    const attempts = (await deliveryAttempts(server, id)) as (AttemptView & { durationMs: number })[];
    expect(attempts.map((attempt) => attempt.status)).toEqual(['failed', 'succeeded']);
    const broker = redactedUrl(relay.url);
    const why = 'the channel was not opened within 1000 ms (ETIMEDOUT)';
    expect(attempts[0]?.error).toBe(`cannot open a channel to the exchange "${queue.exchange}" on ${broker}: ${why}`);
    expect(attempts[0]?.durationMs).toBeLessThan(1_500);
    // The wedged connection is closed (the relay sees its client go), and the message went over the second one.
    expect(relay.connections()).toBe(2);
    await waitFor(() => relay.open().length === 1, 'the stalled connection closed', 2_000);
    const logged = logger.entries.filter((entry) => entry.fields.broker === broker && entry.level === 'warn').map((entry) => [entry.message, entry.fields.error]);
    expect(logged).toEqual([
      ['the AMQP broker did not open a channel: closing the connection', why],
      ['the AMQP connection closed', `closed by Herald: ${why}`],
    ]);
  });

  it('fails an attempt whose confirm does not come within the timeout, and the retry publishes over a new connection; the stalled one is closed, though the broker answers not even its close', async () => {
    const queue = await consumer();
    // The channel opens; from the message on, the broker's answers never reach Herald: no confirm, and no answer to the
    // close. The connection stays up, and RabbitMQ's heartbeats (60 s) would take two minutes to end it.
    const relay = await startStallingRelay('basic.publish');
    onTestFinished(() => relay.close());
    const logger = recordingLogger();
    const server = await app({ timeout: 2_000, retrySchedule: [0, 0.2, 0.2, 0.2, 60] }, allowPrivate, logger);
    const id = await subscribe(server, { url: relay.url, exchange: queue.exchange });
    const [event] = await publishNumbered(server, 1);
    await waitFor(async () => (await deliveryAttempts(server, id)).some((attempt) => attempt.status === 'succeeded'), 'the attempt over a new connection', 10_000);
    expect(relay.stalled()).toBe(true);
    const attempts = await deliveryAttempts(server, id);
    expect(attempts.map((attempt) => [attempt.status, attempt.error])).toEqual([
      ['failed', 'the broker did not confirm within 2000 ms'],
      ['succeeded', null],
    ]);
    expect(relay.connections()).toBe(2);
    // The first message reached the broker too, its confirm held back: the queue has it twice, by the same id.
    await waitFor(() => queue.received.length === 2, 'both messages');
    expect([...queue.ids()]).toEqual([event?.id]);
    // The stalled connection is closed once its attempt is over: its socket, when the broker has not answered the close within the timeout.
    await waitFor(() => relay.open().length === 1, 'the stalled connection closed', 5_000);
    const broker = redactedUrl(relay.url);
    await waitFor(() => logger.entries.some((entry) => entry.message === 'the AMQP connection closed'), 'the close logged');
    const logged = logger.entries.filter((entry) => entry.fields.broker === broker && entry.level === 'warn').map((entry) => [entry.message, entry.fields.error]);
    expect(logged).toEqual([
      [
        'the AMQP broker did not confirm in time: new publishes go to a new connection, and this one closes once the publishes on it have settled',
        'the broker did not confirm within 2000 ms',
      ],
      ['the AMQP connection closed', 'closed by Herald: the broker did not answer the close'],
    ]);
  });

  it('takes a connection whose confirm came too late out of the pool, yet the publishes still on it get their confirms, and closes it once they have', async () => {
    const queue = await consumer();
    const relay = await startStallingRelay();
    onTestFinished(() => relay.close());
    const logger = recordingLogger();
    const pool = new AmqpPool({ allowPrivate: true, logger });
    onTestFinished(() => pool.close());
    const destination = { url: relay.url, exchange: queue.exchange, routingKey: 'order.created' };
    const publish = (id: string, timeout: number) => pool.publish(destination, Buffer.from(JSON.stringify({ id })), { messageId: id }, { timeout });
    await publish('first', 10_000);
    // The broker is slow, not gone: its answers on that connection come, but only once released.
    relay.hold('server-to-client');
    const slow = publish('slow', 500);
    const patient = publish('patient', 60_000);
    await expect(slow).rejects.toThrow(new AmqpPublishError('the broker did not confirm within 500 ms'));
    // The next publish goes over a new connection, while the one before stays open for the publish still waiting on it.
    await publish('fresh', 10_000);
    expect([relay.connections(), relay.open().length]).toEqual([2, 2]);
    relay.release();
    await expect(patient).resolves.toBeUndefined();
    await waitFor(() => relay.open().length === 1, 'the connection taken out closed, once its last publish settled', 5_000);
    await waitFor(() => queue.ids().size === 4, 'every message');
    await waitFor(() => logger.entries.some((entry) => entry.message === 'the AMQP connection closed'), 'the close logged');
    const logged = logger.entries.filter((entry) => entry.level === 'warn').map(({ message, fields }) => [message, fields.error, fields.publishing]);
    expect(logged).toEqual([
      [
        'the AMQP broker did not confirm in time: new publishes go to a new connection, and this one closes once the publishes on it have settled',
        'the broker did not confirm within 500 ms',
        2,
      ],
      ['the AMQP connection closed', undefined, undefined],
    ]);
  });

  it('stops within the timeout while the broker answers nothing: a connection whose close the broker does not answer has its socket closed', async () => {
    const queue = await consumer();
    const relay = await startStallingRelay();
    onTestFinished(() => relay.close());
    const server = await app({ timeout: 1_000 });
    const id = await subscribe(server, { url: relay.url, exchange: queue.exchange });
    await publishNumbered(server, 1);
    await waitFor(async () => (await deliveryAttempts(server, id))[0]?.status === 'succeeded', 'the message confirmed');
    // The connection stays up; from now on the broker's answers never reach Herald, its answer to the close neither.
    relay.hold('server-to-client');
    const stopping = Date.now();
    await server.close();
    expect(Date.now() - stopping).toBeLessThan(3_000);
    await waitFor(() => relay.open().length === 0, 'the connection closed', 2_000);
  });

  it('says why a connection is refused: an unknown vhost, amqps:// to a plain port, amqp:// to a TLS port', async () => {
    const proxy = await startAmqpsProxy();
    onTestFinished(() => proxy.close());
    const server = await app({ retrySchedule: [0, 60] });
    const plain = new URL(brokerUrl);
    const broker = `${plain.username}@${plain.host}`;
    const toVhost = await subscribe(server, { url: `${brokerUrl}/novhost`, exchange: 'orders' });
    const toPlainPort = await subscribe(server, { url: brokerUrl.replace(/^amqp:/, 'amqps:'), exchange: 'orders' });
    const toTlsPort = await subscribe(server, { url: `amqp://${plain.username}:${plain.password}@127.0.0.1:${proxy.port}`, exchange: 'orders' });
    await publishNumbered(server, 1);
    const error = async (id: string) => {
      await waitFor(async () => (await deliveryAttempts(server, id)).length === 1, 'the attempt');
      return (await deliveryAttempts(server, id))[0]?.error;
    };
    expect(await error(toVhost)).toBe(
      `cannot connect to amqp://${broker}/novhost: the broker refused to open the vhost "novhost": it does not exist, the user "${plain.username}" may not use it, or a connection limit is reached`,
    );
    expect(await error(toPlainPort)).toBe(`cannot connect to amqps://${broker}: the server on port ${plain.port} does not speak TLS: is it a plain amqp:// port? (ERR_SSL_WRONG_VERSION_NUMBER)`);
    expect(await error(toTlsPort)).toBe(
      `cannot connect to amqp://${plain.username}@127.0.0.1:${proxy.port}: the server closed the connection during the AMQP handshake: if port ${proxy.port} takes TLS, use amqps://`,
    );
  });

  it('with mandatory, fails a message no queue takes with the reason the broker returned it, and delivers it once one does; without, the broker confirms and drops it', async () => {
    const queue = await consumer({ pattern: 'billing' });
    const server = await app({ retrySchedule: Array(50).fill(0.2) });
    const dropped = await subscribe(server, { url: brokerUrl, exchange: queue.exchange });
    const returned = await subscribe(server, { url: brokerUrl, exchange: queue.exchange, mandatory: true });
    const noQueue = uniqueName('no-queue');
    const toNoQueue = await subscribe(server, { url: brokerUrl, exchange: '', routingKey: noQueue, mandatory: true });
    const [event] = await publishNumbered(server, 1);
    const failedTwice = async (id: string) => (await deliveryAttempts(server, id)).filter((attempt) => attempt.status === 'failed').length >= 2;
    await waitFor(async () => (await failedTwice(returned)) && (await failedTwice(toNoQueue)), 'returned messages retried');
    expect((await deliveryAttempts(server, returned))[0]?.error).toBe(
      `the broker returned the message: no queue is bound to the exchange "${queue.exchange}" for the routing key "order.created" on amqp://guest@127.0.0.1:5672 (312 NO_ROUTE)`,
    );
    expect((await deliveryAttempts(server, toNoQueue))[0]?.error).toBe(`the broker returned the message: no queue is named "${noQueue}" on amqp://guest@127.0.0.1:5672 (312 NO_ROUTE)`);
    expect((await deliveryAttempts(server, dropped)).map((attempt) => attempt.status)).toEqual(['succeeded']);
    expect(queue.received).toHaveLength(0);

    await queue.bind('order.*');
    await waitFor(async () => (await deliveryAttempts(server, returned)).some((attempt) => attempt.status === 'succeeded'), 'the retry once a queue is bound');
    // The message the broker confirmed and dropped is gone; the returned one arrives on its retry.
    await waitFor(() => queue.ids().has(event?.id as string), 'the message');
    expect(queue.received).toHaveLength(1);
  });

  it('fails the attempts while the exchange is gone (the channel closes), then delivers everything once it is back', async () => {
    const queue = await consumer();
    const errors: string[] = [];
    // Attempts for 20 s: a broker slow to take the exchange back (a loaded machine) fails no delivery for good.
    const server = await app({ retrySchedule: Array(100).fill(0.2), onAttempt: (attempt) => void (attempt.error && errors.push(attempt.error)) });
    await subscribe(server, { url: brokerUrl, exchange: queue.exchange });
    const before = await publishNumbered(server, 50);
    await waitFor(() => queue.received.length >= 10, 'the first messages');
    await queue.removeExchange(true);
    const during = await publishNumbered(server, 50);
    await waitFor(() => errors.length > 0, 'a failed attempt');
    await queue.removeExchange(false);
    const all = [...before, ...during].map((event) => event.id);
    await waitFor(() => all.every((eventId) => queue.ids().has(eventId)), 'every event', 30_000).catch((error: Error) => {
      const missing = all.filter((eventId) => !queue.ids().has(eventId)).length;
      throw new Error(`${error.message}: ${missing} of ${all.length} missing; the attempts failed with: ${[...new Set(errors)].join('; ')}`);
    });
    expect(errors.some((error) => /NOT.FOUND/.test(error)), errors.join('\n')).toBe(true);
  }, 60_000);
});

describe('a broker slow to answer', () => {
  it('keeps a new connection whose confirm wait connecting cut short: the attempt fails saying so, and the retry publishes on it', async () => {
    const queue = await consumer();
    // Each answer takes 1600 ms: the three of the handshake and the three of the channel (channel.open, confirm.select,
    // the check of the exchange) take at least 9600 ms of the 10800 ms timeout, which leaves the confirm at most 1200,
    // and it takes 1600 (a busy machine has 1200 ms to spare for the setting up). The connection is healthy: the retry,
    // which publishes on it, waits up to 10800 ms. Were it taken out, each attempt would connect as slowly, and fail again.
    const relay = await startSlowRelay(1_600);
    onTestFinished(() => relay.close());
    const logger = recordingLogger();
    const server = await app({ timeout: 10_800, retrySchedule: [0, 0.2, 60] }, allowPrivate, logger);
    const id = await subscribe(server, { url: relay.url, exchange: queue.exchange });
    const [event] = await publishNumbered(server, 1);
    await waitFor(async () => (await deliveryAttempts(server, id)).some((attempt) => attempt.status === 'succeeded'), 'the retry on the same connection', 30_000);
    const attempts = await deliveryAttempts(server, id);
    expect(attempts.map((attempt) => [attempt.status, attempt.error])).toEqual([
      ['failed', expect.stringMatching(/^the broker did not confirm within \d+ ms, as connecting and opening the channel took \d+ ms of the attempt's 10800 ms: the connection is kept for the next attempt$/)],
      ['succeeded', null],
    ]);
    // The two numbers are the attempt's timeout, split where the time went.
    const [waited = 0, setUp = 0] = attempts[0]?.error?.match(/\d+(?= ms)/g)?.map(Number) ?? [];
    expect(waited + setUp).toBe(10_800);
    expect(setUp).toBeGreaterThanOrEqual(6 * 1_600);
    // One connection in all; the first message reached the broker too, its confirm late: the queue has it twice, by the same id.
    expect(relay.connections()).toBe(1);
    expect(relay.open()).toHaveLength(1);
    await waitFor(() => queue.received.length === 2, 'both messages');
    expect([...queue.ids()]).toEqual([event?.id]);
    expect(logger.entries.filter((entry) => entry.level === 'warn')).toEqual([]);
  }, 60_000);
});

describe('a broker behind TLS (amqps)', () => {
  it('takes the events over amqps:// from a Herald process that trusts its private authority (NODE_EXTRA_CA_CERTS), checking the certificate against the host name; without it, the attempt fails for the certificate and nothing arrives', async () => {
    // A TLS-terminating endpoint in front of the machine's RabbitMQ, with a certificate for localhost that the test authority signed.
    const proxy = await startAmqpsProxy();
    onTestFinished(() => proxy.close());
    expect(proxy.url).toMatch(/^amqps:\/\/[^@]+@localhost:\d+$/);
    const [trusted, untrusted] = await Promise.all([consumer(), consumer()]);
    // Node reads NODE_EXTRA_CA_CERTS only when a process starts: two Herald processes, the same but for it.
    const [trusting, distrusting] = await Promise.all([startPushNodeProcess(transportModule, 'amqp', { NODE_EXTRA_CA_CERTS: testTls.ca }), startPushNodeProcess(transportModule, 'amqp', { NODE_EXTRA_CA_CERTS: undefined })]);

    const toTrusted = await subscribe(trusting, { url: proxy.url, exchange: trusted.exchange, ordered: true });
    const toUntrusted = await subscribe(distrusting, { url: proxy.url, exchange: untrusted.exchange });
    const [published, [refused]] = await Promise.all([publishOverRest(trusting, 20), publishOverRest(distrusting, 1)]);

    await expectDeliveredInOrder(trusting, toTrusted, () => trusted.events, published);
    // The connection asked for the host name (SNI), which the certificate is checked against, not for the address it dialled.
    expect(proxy.servernames).toEqual(['localhost']);

    // Without the authority: TLS refuses the certificate, so nothing is sent, and the attempt says why.
    const shown = new URL(proxy.url);
    shown.password = '';
    expect(await onlyFailedAttempt(distrusting, toUntrusted, refused as string)).toBe(
      `cannot connect to ${shown.href}: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
    );
    expect(untrusted.received).toHaveLength(0);
  });

  it('takes the events over amqps:// in this process with `tls: { ca }`, naming the host in the handshake (SNI); without it, the attempt fails for the certificate', async () => {
    const proxy = await startAmqpsProxy();
    onTestFinished(() => proxy.close());
    const [trusted, untrusted] = await Promise.all([consumer(), consumer()]);
    const [trusting, distrusting] = await Promise.all([app({ tls: { ca: readFileSync(testTls.ca) } }), app({ retrySchedule: [0, 60] })]);

    const toTrusted = await subscribe(trusting, { url: proxy.url, exchange: trusted.exchange, ordered: true });
    const toUntrusted = await subscribe(distrusting, { url: proxy.url, exchange: untrusted.exchange });
    const published = (await publishNumbered(trusting, 20)).map((event) => event.id);
    const [refused] = await publishNumbered(distrusting, 1);

    await expectDeliveredInOrder(trusting, toTrusted, () => trusted.events, published);
    expect(proxy.servernames).toEqual(['localhost']);
    const shown = new URL(proxy.url);
    shown.password = '';
    expect(await onlyFailedAttempt(distrusting, toUntrusted, refused?.id as string)).toBe(
      `cannot connect to ${shown.href}: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
    );
    expect(untrusted.received).toHaveLength(0);
  });
});

describe('a restart of the broker', () => {
  it('loses nothing: attempts fail while RabbitMQ is down, and every event arrives once it is back', async () => {
    const queue = await consumer({ durable: true });
    const server = await app({ retrySchedule: Array(60).fill(1), concurrency: 5, timeout: 5_000 });
    await subscribe(server, { url: brokerUrl, exchange: queue.exchange });
    const published = await publishNumbered(server, 300);
    await waitFor(() => queue.received.length >= 50, 'the first messages', 30_000);
    // stop_app and start_app restart RabbitMQ inside its running node: every connection drops, and only durable
    // exchanges, queues and persistent messages survive, as in a full restart.
    await run('rabbitmqctl', ['stop_app'], { timeout: 60_000 });
    published.push(...(await publishNumbered(server, 300)));
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await run('rabbitmqctl', ['start_app'], { timeout: 60_000 });
    await run('rabbitmqctl', ['await_startup'], { timeout: 60_000 });
    await queue.reconnect();
    await waitFor(() => published.every((event) => queue.ids().has(event.id)), 'every event after the restart', 60_000);
    expect(queue.ids().size).toBe(600);
  }, 180_000);
});

describe('the broker URL', () => {
  it('never shows the password: not in the API, the errors or the logs', async () => {
    const logger = recordingLogger();
    const server = await app({ retrySchedule: [0, 60] }, allowPrivate, logger);
    const secretUrl = 'amqp://herald:pa55-w0rd-secret@127.0.0.1:1/vhost';
    const key = await server.consumerKey('acme');
    const created = await server.api('POST', '/v1/subscriptions', { transport: 'amqp', types: ['**'], config: { url: secretUrl, exchange: 'events' } }, key);
    expect(created.status).toBe(201);
    expect(created.body.config.url).toBe('amqp://herald@127.0.0.1:1/vhost');
    await publishNumbered(server, 1);
    await waitFor(async () => (await deliveryAttempts(server, created.body.id)).length === 1, 'the failed attempt');
    const shown = [
      created.body,
      (await server.api('GET', `/v1/subscriptions/${created.body.id}`, undefined, key)).body,
      (await server.api('GET', '/v1/subscriptions', undefined, key)).body,
      (await server.api('GET', `/v1/subscriptions/${created.body.id}/deliveries`, undefined, key)).body,
      (await server.api('PATCH', `/v1/subscriptions/${created.body.id}`, { config: { url: secretUrl, exchange: 'other' } }, key)).body,
    ];
    expect(JSON.stringify(shown)).toContain('ECONNREFUSED');
    expect(JSON.stringify(shown)).not.toContain('pa55-w0rd-secret');
    // The connection failure is logged, naming the broker without its password.
    const lines = logger.entries.map((entry) => JSON.stringify(entry, (_, value) => (value instanceof Error ? { message: value.message, stack: value.stack } : value)));
    expect(lines.some((line) => line.includes('amqp://herald@127.0.0.1:1/vhost') && line.includes('ECONNREFUSED'))).toBe(true);
    expect(lines.join('\n')).not.toContain('pa55-w0rd-secret');
    // Under the transport's name, bound once (pino would write a key bound twice twice in one line).
    expect(logger.entries.find((entry) => entry.message === 'cannot connect to the AMQP broker')?.fields.transport).toBe('amqp');
    expect(logger.boundAgain).toEqual([]);
  });

  it('keeps the stored password when PATCH sends the URL back as the API shows it, and only for the same user, host, port and vhost', async () => {
    const queue = await consumer({ pattern: 'billing' });
    const server = await app();
    const key = await server.consumerKey('acme');
    const password = new URL(brokerUrl).password;
    const created = await server.api('POST', '/v1/subscriptions', { transport: 'amqp', types: ['order.*'], config: { url: brokerUrl, exchange: queue.exchange } }, key);
    expect(created.status).toBe(201);
    const path = `/v1/subscriptions/${created.body.id}`;
    const shown = (await server.api('GET', path, undefined, key)).body.config;
    expect(shown.url).toBe(redactedUrl(brokerUrl));
    expect(new URL(shown.url).password).toBe('');
    const patched = await server.api('PATCH', path, { config: { ...shown, routingKey: 'billing' } }, key);
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.config).toEqual({ ...shown, routingKey: 'billing' });
    expect(JSON.stringify(patched.body)).not.toContain(`:${password}@`);
    const test = await server.api('POST', `${path}/test`, {}, key);
    expect(test.body, JSON.stringify(test.body)).toMatchObject({ status: 'succeeded', error: null });
    await waitFor(() => queue.received.length === 1, 'the test message, routed by the new key');
    expect(queue.received[0]?.message.fields.routingKey).toBe('billing');
    // Another user without a password is stored as given: amqplib then sends an empty password, which the broker refuses.
    const otherUser = new URL(brokerUrl);
    otherUser.username = 'herald-nobody';
    otherUser.password = '';
    expect((await server.api('PATCH', path, { config: { url: otherUser.href } }, key)).status).toBe(200);
    const refused = await server.api('POST', `${path}/test`, {}, key);
    expect(refused.body).toMatchObject({ status: 'failed', error: expect.stringMatching(/herald-nobody@.*ACCESS.REFUSED/) });
    expect(JSON.stringify(refused.body)).not.toContain(`:${password}@`);
  });

  it('refuses loopback, private and plain amqp brokers with a 422 unless HERALD_ALLOW_PRIVATE=1 or allowPrivate', async () => {
    const logger = recordingLogger();
    const strict = await app({}, {}, logger);
    const key = await strict.consumerKey('acme');
    for (const url of [
      'amqps://guest:guest@127.0.0.1:5671',
      'amqps://guest:guest@[::1]:5671',
      'amqps://10.0.0.8',
      'amqps://169.254.169.254',
      'amqps://localhost',
      'amqp://rabbit.example.com',
      'http://rabbit.example.com',
      'not a url',
    ]) {
      const { status, body } = await strict.api('POST', '/v1/subscriptions', { transport: 'amqp', types: ['**'], config: { url, exchange: 'events' } }, key);
      expect(status, url).toBe(422);
      expect(body.errors[0].path, url).toEqual(['config', 'url']);
    }
    // The consumer reads what the scheme must be; how the provider allows amqp:// is in the provider's log.
    const plain = await strict.api('POST', '/v1/subscriptions', { transport: 'amqp', types: ['**'], config: { url: 'amqp://rabbit.example.com', exchange: 'events' } }, key);
    expect(plain.body.errors).toEqual([{ path: ['config', 'url'], message: 'must be amqps' }]);
    expect(JSON.stringify(plain.body)).not.toContain('HERALD_ALLOW_PRIVATE');
    expect(logger.entries).toContainEqual({
      level: 'info',
      fields: expect.objectContaining({ transport: 'amqp', refused: 'must be amqps', hint: 'HERALD_ALLOW_PRIVATE=1 allows amqp for development' }),
      message: "refused a subscription's destination",
    });
    for (const config of [{ url: 'amqps://rabbit.example.com' }, { url: 'amqps://rabbit.example.com', exchange: 'x'.repeat(256) }, { url: 'amqps://rabbit.example.com', exchange: 'e', surprise: 1 }, { url: 'amqps://rabbit.example.com', exchange: 'e', mandatory: 'yes' }]) {
      expect((await strict.api('POST', '/v1/subscriptions', { transport: 'amqp', types: ['**'], config }, key)).status, JSON.stringify(config)).toBe(422);
    }
    const allowed = { transport: 'amqp', types: ['**'], config: { url: 'amqps://rabbit.example.com', exchange: 'events' } };
    expect((await strict.api('POST', '/v1/subscriptions', allowed, key)).status).toBe(201);
    const local = { transport: 'amqp', types: ['**'], config: { url: brokerUrl, exchange: 'events' } };
    for (const [options, env] of [
      [{}, { HERALD_ALLOW_PRIVATE: '1' }],
      [{}, { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' }],
      [{ allowPrivate: true }, {}],
    ] as const) {
      const open = await app(options, env);
      expect((await open.api('POST', '/v1/subscriptions', local, await open.consumerKey('acme'))).status, JSON.stringify(env)).toBe(201);
    }
  });

  it('refuses a fragment and query parameters amqplib does not read (or bad values) with a 422, echoing no value; takes those it reads', async () => {
    const logger = recordingLogger();
    const server = await app({}, allowPrivate, logger);
    const key = await server.consumerKey('acme');
    const refused = [
      `${brokerUrl}?password=qsecret`,
      `${brokerUrl}/?heartbeat=30&token=qsecret`,
      `${brokerUrl}#qsecret`,
      `${brokerUrl}?heartbeat=30#`,
      `${brokerUrl}?heartbeat=qsecret`,
      `${brokerUrl}?heartbeat=30&heartbeat=60`,
      `${brokerUrl}?frameMax=1`,
      `${brokerUrl}?channelMax=65536`,
      `${brokerUrl}?maxFrameSize=8192`,
    ];
    for (const url of refused) {
      const { status, body } = await server.api('POST', '/v1/subscriptions', { transport: 'amqp', types: ['**'], config: { url, exchange: 'events' } }, key);
      expect(status, url).toBe(422);
      expect(body.errors.map((issue: { path: string[] }) => issue.path), url).toEqual([['config', 'url']]);
      expect(JSON.stringify(body), url).not.toContain('qsecret');
    }
    const created = await server.api('POST', '/v1/subscriptions', { transport: 'amqp', types: ['**'], config: { url: brokerUrl, exchange: 'events' } }, key);
    const patched = await server.api('PATCH', `/v1/subscriptions/${created.body.id}`, { config: { url: `${brokerUrl}?password=qsecret` } }, key);
    expect(patched.status).toBe(422);
    expect(JSON.stringify(patched.body)).not.toContain('qsecret');
    expect(JSON.stringify(logger.entries)).not.toContain('qsecret');

    // Those amqplib reads, with values it can use: the broker takes the connection.
    const queue = await consumer();
    const tuned = `${brokerUrl}/?heartbeat=30&frameMax=131072&channelMax=64&locale=en_US`;
    const id = await subscribe(server, { url: tuned, exchange: queue.exchange });
    expect((await server.api('GET', `/v1/subscriptions/${id}`, undefined, key)).body.config.url).toBe(tuned.replace(`:${new URL(brokerUrl).password}@`, '@'));
    await publishNumbered(server, 1);
    await waitFor(() => queue.received.length === 1, 'the message');

    // A URL stored before these were refused is shown without the fragment, and with *** for the values amqplib does not read.
    expect(redactedUrl('amqp://herald:pa55@rabbit.example.com/vhost?heartbeat=30&password=qsecret#token')).toBe('amqp://herald@rabbit.example.com/vhost?heartbeat=30&password=***');
  });

  it('refuses an exchange or routing key with a control character, an unpaired surrogate or more than 255 bytes, with a 422 at the field', async () => {
    const server = await app();
    const key = await server.consumerKey('acme');
    const bad = ['a\u0000b', 'tab\there', 'line\n', 'del\u007f', 'c1\u0085', 'half\ud800', 'é'.repeat(128)];
    for (const field of ['exchange', 'routingKey']) {
      for (const value of bad) {
        const config = { url: brokerUrl, exchange: 'events', [field]: value };
        const { status, body } = await server.api('POST', '/v1/subscriptions', { transport: 'amqp', types: ['**'], config }, key);
        expect(status, JSON.stringify(config)).toBe(422);
        expect(body.errors.map((issue: { path: string[] }) => issue.path), JSON.stringify(config)).toEqual([['config', field]]);
      }
    }
    // 254 bytes, and the punctuation RabbitMQ names take.
    for (const value of ['é'.repeat(127), 'orders.v2:eu-west_1/main', 'amq.topic']) {
      const config = { url: brokerUrl, exchange: value, routingKey: value };
      expect((await server.api('POST', '/v1/subscriptions', { transport: 'amqp', types: ['**'], config }, key)).status, value).toBe(201);
    }
  });

  it('refuses at connect time a public-looking broker name that resolves to 127.0.0.1 (DNS rebinding)', async () => {
    const queue = await consumer();
    const rebinding: LookupFunction = (_hostname, options, callback) =>
      options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4);
    const server = await app({ lookup: rebinding, retrySchedule: [0, 60] }, {});
    const id = await subscribe(server, { url: 'amqps://guest:guest@rabbit.rebind.example:5672', exchange: queue.exchange });
    await publishNumbered(server, 1);
    await waitFor(async () => (await deliveryAttempts(server, id)).length === 1, 'the first attempt');
    expect((await deliveryAttempts(server, id))[0]?.error).toMatch(/rabbit\.rebind\.example resolves to a loopback address/);
    expect(queue.received).toHaveLength(0);
  });
});
