import assert from 'node:assert/strict';
import { type HeraldEvent, matchesPattern, type Transport } from '@herald/core';
import type { HeraldOptions } from '@herald/server';
import { describe, it } from 'vitest';
import { startTestApp, type TestApp } from './test-app.js';
import { settle, waitFor } from './wait-for.js';

/** One consumer's endpoint on a durable subscription, as the transport under test delivers to it. */
export interface Receiver {
  subscriptionId: string;
  /** Every event received so far, in arrival order. */
  readonly events: readonly HeraldEvent[];
  close(): Promise<void>;
}

/** What the suite needs to know about a transport. */
export interface TransportHarness {
  /** A new instance of the transport under test. */
  transport(): Transport;
  /** More createHerald options, e.g. `env` allowing private webhook targets. */
  options?: Partial<HeraldOptions>;
  /**
   * Creates a durable subscription of `consumer` to `types` on the transport (through the REST API,
   * with that consumer's key) and starts receiving on it.
   */
  receive(app: TestApp, input: { consumer: string; types: string[] }): Promise<Receiver>;
}

/** A named check of the suite; `run` rejects when the transport fails it. */
export interface SuiteCase {
  name: string;
  run(): Promise<void>;
}

const mixedTypes = ['order.created', 'order.shipped', 'order.line.added', 'invoice.paid', 'user.signed_up'];

type Receive = (consumer: string, types: string[]) => Promise<Receiver>;

/** Runs `check` against a fresh server; closes its receivers and the server afterwards. */
async function withApp(harness: TransportHarness, check: (app: TestApp, receive: Receive) => Promise<void>): Promise<void> {
  const app = await startTestApp([harness.transport()], harness.options);
  const receivers: Receiver[] = [];
  const receive: Receive = async (consumer, types) => {
    const receiver = await harness.receive(app, { consumer, types });
    receivers.push(receiver);
    return receiver;
  };
  try {
    await check(app, receive);
  } finally {
    await app.close();
    await Promise.all(receivers.map((receiver) => receiver.close()));
  }
}

async function publish(app: TestApp, type: string, n: number, consumer?: string): Promise<HeraldEvent> {
  const { event } = await app.herald.publish({ type, data: { n }, ...(consumer !== undefined ? { consumer } : {}) } as never);
  return event;
}

function assertInOrder(receiver: Receiver, label: string): void {
  const seqs = receiver.events.map((event) => event.seq);
  for (let i = 1; i < seqs.length; i++) {
    assert.ok((seqs[i] as number) > (seqs[i - 1] as number), `${label}: seq ${seqs[i]} arrived after ${seqs[i - 1]}`);
  }
}

const idsOf = (events: readonly HeraldEvent[]) => events.map((event) => event.id);

/** Every check of the transport suite, each starting its own server. */
export function transportSuiteCases(harness: TransportHarness): SuiteCase[] {
  return [
    {
      name: 'delivers exactly the matching events, in seq order',
      run: () =>
        withApp(harness, async (app, receive) => {
          const patterns = [['order.created'], ['order.*'], ['order.**'], ['*.paid', 'user.*'], ['**']];
          const receivers = await Promise.all(patterns.map((types) => receive('acme', types)));
          const published: HeraldEvent[] = [];
          for (let n = 0; n < 40; n++) published.push(await publish(app, mixedTypes[n % mixedTypes.length] as string, n));
          for (const [index, receiver] of receivers.entries()) {
            const types = patterns[index] as string[];
            const expected = published.filter((event) => types.some((pattern) => matchesPattern(pattern, event.type)));
            await waitFor(() => receiver.events.length >= expected.length, `${expected.length} events for ${types}`);
            await settle();
            assert.deepEqual(idsOf(receiver.events), idsOf(expected), `the events received for ${types}`);
            assertInOrder(receiver, types.join(','));
          }
        }),
    },
    {
      name: 'honours consumer addressing',
      run: () =>
        withApp(harness, async (app, receive) => {
          const alpha = await receive('alpha', ['order.*']);
          const beta = await receive('beta', ['order.*']);
          const published = [
            await publish(app, 'order.created', 1),
            await publish(app, 'order.created', 2, 'alpha'),
            await publish(app, 'order.created', 3, 'beta'),
            await publish(app, 'order.shipped', 4, 'alpha'),
            await publish(app, 'order.shipped', 5),
          ];
          for (const [consumer, receiver] of [['alpha', alpha], ['beta', beta]] as const) {
            const expected = published.filter((event) => event.consumer === undefined || event.consumer === consumer);
            await waitFor(() => receiver.events.length >= expected.length, `${consumer}'s events`);
            await settle();
            assert.deepEqual(idsOf(receiver.events), idsOf(expected), `what ${consumer} received`);
          }
        }),
    },
    {
      name: 'gives paused and disabled subscriptions nothing',
      run: () =>
        withApp(harness, async (app, receive) => {
          const paused = await receive('acme', ['order.*']);
          const disabled = await receive('acme', ['order.*']);
          const control = await receive('acme', ['order.*']);
          for (const [receiver, status] of [[paused, 'paused'], [disabled, 'disabled']] as const) {
            const { status: code } = await app.api('PATCH', `/v1/subscriptions/${receiver.subscriptionId}`, { status });
            assert.equal(code, 200, `PATCH status ${status}`);
          }
          const published: HeraldEvent[] = [];
          for (let n = 0; n < 5; n++) published.push(await publish(app, 'order.created', n));
          await waitFor(() => control.events.length >= published.length, 'the active subscription to receive');
          await settle();
          assert.equal(paused.events.length, 0, 'events delivered to a paused subscription');
          assert.equal(disabled.events.length, 0, 'events delivered to a disabled subscription');

          const resumed = await app.api('PATCH', `/v1/subscriptions/${paused.subscriptionId}`, { status: 'active' });
          assert.equal(resumed.status, 200);
          const after = await publish(app, 'order.shipped', 99);
          await waitFor(() => paused.events.some((event) => event.id === after.id), 'the resumed subscription to receive');
          await settle();
          assert.equal(disabled.events.length, 0, 'events delivered to a disabled subscription');
        }),
    },
    {
      name: 'stops gracefully',
      run: async () => {
        const app = await startTestApp([harness.transport()], harness.options);
        let closed = false;
        try {
          const receiver = await harness.receive(app, { consumer: 'acme', types: ['**'] });
          const first = await publish(app, 'order.created', 0);
          await waitFor(() => receiver.events.length === 1, 'the first event');
          assert.equal(receiver.events[0]?.id, first.id);
          const publishing = Array.from({ length: 20 }, (_, n) => publish(app, 'order.shipped', n + 1));
          const results = await Promise.allSettled(publishing);
          assert.ok(results.every((result) => result.status === 'fulfilled'), 'publishes before close succeed');
          const started = Date.now();
          await app.close();
          closed = true;
          assert.ok(Date.now() - started < 15_000, 'close() took over 15 s');
          const count = receiver.events.length;
          await settle(300);
          assert.equal(receiver.events.length, count, 'events arrived after close() resolved');
          assert.equal(new Set(idsOf(receiver.events)).size, receiver.events.length, 'an event arrived twice');
          assertInOrder(receiver, 'before close');
          await receiver.close();
        } finally {
          if (!closed) await app.close();
        }
      },
    },
  ];
}

/**
 * The conformance suite every transport passes, for vitest:
 * `runTransportSuite('websocket', { transport: () => websocket(), receive })`.
 */
export function runTransportSuite(name: string, harness: TransportHarness): void {
  describe(`transport suite: ${name}`, () => {
    for (const check of transportSuiteCases(harness)) it(check.name, check.run, 60_000);
  });
}
