import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/core';
import { idsOf, publish, startTestApp, type TestApp } from './test-app.js';
import type { PullHarness, Receiver, SuiteCase, TransportHarness } from './transport-harness.js';
import { linger, waitFor } from './wait-for.js';

/**
 * A {@link Receiver} on a pull transport's durable subscription: pulls in a loop, each request
 * acknowledging the answer before it (`after`) and waiting up to `wait` ms, until it is closed or a
 * request fails. What `TransportHarness.receive` of a pull transport returns, once it has created the subscription.
 */
export function pullingReceiver(
  app: TestApp,
  pull: PullHarness,
  { credential, subscriptionId, wait = 1000 }: { credential: string; subscriptionId: string; wait?: number },
): Receiver {
  const events: HeraldEvent[] = [];
  let closed = false;
  const loop = (async () => {
    let after: string | undefined;
    while (!closed) {
      const answer = await pull.pull(app, { credential, subscriptionId, ...(after !== undefined ? { after } : {}), wait }).catch(() => undefined);
      if (!answer || closed) return;
      events.push(...answer.events);
      after = answer.next;
    }
  })();
  return {
    subscriptionId,
    events,
    async close() {
      closed = true;
      await loop;
    },
  };
}

/** How a pull transport stops, in place of the suite's "stops gracefully" for transports that send. */
export function pullStopCase(harness: TransportHarness): SuiteCase {
  return {
    name: 'stops gracefully: answers a request waiting for events at once, and close() does not wait out its wait',
    needs: ['pull'],
    run: async () => {
      const pull = harness.pull as PullHarness;
      const app = await startTestApp([harness.transport()], harness.options);
      let closed = false;
      try {
        const credential = await app.consumerKey('acme');
        const receiver = await harness.receive(app, { consumer: 'acme', types: ['**'] });
        // The case makes the requests itself, on the subscription the receiver made.
        await receiver.close();
        const request = { credential, subscriptionId: receiver.subscriptionId };
        const before = await pull.pull(app, { ...request, wait: 0 });
        assert.deepEqual(before.events, [], 'the first answer: nothing was published');

        const waiting = pull.pull(app, { ...request, after: before.next, wait: 20_000 });
        await linger(200);
        const asked = Date.now();
        const event = await publish(app, 'order.created', 1);
        const answer = await waiting;
        assert.ok(Date.now() - asked < 10_000, 'the waiting request was answered only after 10 s');
        assert.deepEqual(idsOf(answer.events), [event.id], 'the answer to the waiting request');

        let answered: unknown;
        const stopping = pull.pull(app, { ...request, after: answer.next, wait: 30_000 }).then(
          (whole) => (answered = whole),
          (error: unknown) => (answered = error),
        );
        await linger(300);
        const started = Date.now();
        await app.close();
        closed = true;
        assert.ok(Date.now() - started < 15_000, 'close() took over 15 s: it waited out a waiting request');
        await waitFor(() => answered !== undefined, 'the waiting request to end', 5_000);
        assert.ok(!(answered instanceof Error), `the request waiting when the server stopped was not answered: ${String(answered)}`);
        assert.deepEqual((answered as { events: HeraldEvent[] }).events, [], 'what the waiting request was answered with: nothing was published');
        await stopping;
        await assert.rejects(pull.pull(app, { ...request, after: answer.next, wait: 0 }), 'a request to the stopped server');
      } finally {
        if (!closed) await app.close();
      }
    },
  };
}
