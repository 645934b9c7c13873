import assert from 'node:assert/strict';
import { type HeraldEvent, matchesPattern } from '@herald/core';
import { describe, it } from 'vitest';
import { authorizationCases } from './authorization-cases.js';
import { pullStopCase } from './pull-cases.js';
import { pushCases } from './push-cases.js';
import { idsOf, publish, startTestApp, withTestApp } from './test-app.js';
import type { HarnessCapability, Receiver, SuiteCase, TransportHarness } from './transport-harness.js';
import { linger, waitFor } from './wait-for.js';

export type { SuiteCase } from './transport-harness.js';

const mixedTypes = ['order.created', 'order.shipped', 'order.line.added', 'invoice.paid', 'user.signed_up'];

function assertInOrder(receiver: Receiver, label: string): void {
  const seqs = receiver.events.map((event) => event.seq);
  for (let i = 1; i < seqs.length; i++) {
    assert.ok((seqs[i] as number) > (seqs[i - 1] as number), `${label}: seq ${seqs[i]} arrived after ${seqs[i - 1]}`);
  }
}

/** Every check of the transport suite, each starting its own server, whether it applies to `harness` or not ({@link missingCapabilities}). */
export function transportSuiteCases(harness: TransportHarness): SuiteCase[] {
  return [...deliveryCases(harness), ...authorizationCases(harness), ...pushCases(harness)];
}

/** What `check` needs that `harness` does not offer: it applies when nothing is missing. */
export function missingCapabilities(harness: TransportHarness, check: SuiteCase): HarnessCapability[] {
  return (check.needs ?? []).filter((capability) => harness[capability] === undefined);
}

function deliveryCases(harness: TransportHarness): SuiteCase[] {
  return [
    {
      name: 'delivers exactly the matching events, in seq order',
      run: () =>
        withTestApp(harness, async ({ app, receive }) => {
          const patterns = [['order.created'], ['order.*'], ['order.**'], ['*.paid', 'user.*'], ['**']];
          const receivers = await Promise.all(patterns.map((types) => receive('acme', types)));
          const published: HeraldEvent[] = [];
          for (let n = 0; n < 40; n++) published.push(await publish(app, mixedTypes[n % mixedTypes.length] as string, n));
          for (const [index, receiver] of receivers.entries()) {
            const types = patterns[index] as string[];
            const expected = published.filter((event) => types.some((pattern) => matchesPattern(pattern, event.type)));
            await waitFor(() => receiver.events.length >= expected.length, `${expected.length} events for ${types}`);
            await linger();
            assert.deepEqual(idsOf(receiver.events), idsOf(expected), `the events received for ${types}`);
            assertInOrder(receiver, types.join(','));
          }
        }),
    },
    {
      name: 'honours consumer addressing',
      run: () =>
        withTestApp(harness, async ({ app, receive }) => {
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
            await linger();
            assert.deepEqual(idsOf(receiver.events), idsOf(expected), `what ${consumer} received`);
          }
        }),
    },
    {
      name: 'gives paused and disabled subscriptions nothing',
      run: () =>
        withTestApp(harness, async ({ app, receive }) => {
          const paused = await receive('acme', ['order.*']);
          const disabled = await receive('acme', ['order.*']);
          const control = await receive('acme', ['order.*']);
          // Paused by its consumer, disabled by an admin.
          const key = await app.consumerKey('acme');
          for (const [receiver, status, by] of [[paused, 'paused', key], [disabled, 'disabled', app.adminKey]] as const) {
            const { status: code } = await app.api('PATCH', `/v1/subscriptions/${receiver.subscriptionId}`, { status }, by);
            assert.equal(code, 200, `PATCH status ${status}`);
          }
          const published: HeraldEvent[] = [];
          for (let n = 0; n < 5; n++) published.push(await publish(app, 'order.created', n));
          await waitFor(() => control.events.length >= published.length, 'the active subscription to receive');
          await linger();
          assert.equal(paused.events.length, 0, 'events delivered to a paused subscription');
          assert.equal(disabled.events.length, 0, 'events delivered to a disabled subscription');

          const resumed = await app.api('PATCH', `/v1/subscriptions/${paused.subscriptionId}`, { status: 'active' }, key);
          assert.equal(resumed.status, 200);
          const after = await publish(app, 'order.shipped', 99);
          await waitFor(() => paused.events.some((event) => event.id === after.id), 'the resumed subscription to receive');
          await linger();
          assert.deepEqual(idsOf(paused.events), [after.id], 'what the resumed subscription received: nothing published while it was paused');
          assert.equal(disabled.events.length, 0, 'events delivered to a disabled subscription');
        }),
    },
    harness.pull ? pullStopCase(harness) : {
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
          await linger(300);
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
 * `runTransportSuite('websocket', { transport: () => websocket(), receive, connect })`. The title says
 * how many cases apply, and counts the others by what they need that the harness does not offer.
 */
export function runTransportSuite(name: string, harness: TransportHarness): void {
  const cases = transportSuiteCases(harness);
  const applicable = cases.filter((check) => missingCapabilities(harness, check).length === 0);
  const missing = new Map<string, number>();
  for (const check of cases) {
    const needs = missingCapabilities(harness, check)
      .map((capability) => (capability === 'connect' ? 'connect()' : capability))
      .join(' and ');
    if (needs) missing.set(needs, (missing.get(needs) ?? 0) + 1);
  }
  const left = [...missing].map(([needs, count]) => `${count} that need ${needs}`);
  const title = `transport suite: ${name}, ${applicable.length} of ${cases.length} cases${left.length > 0 ? ` (not applicable: ${left.join(', ')})` : ''}`;
  describe(title, () => {
    for (const check of applicable) it(check.name, check.run, check.timeout ?? 60_000);
  });
}
