import { canAccess, defineRoute, type HeraldEvent, NotFoundError, type Transport } from '@herald/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { pullingReceiver } from './pull-cases.js';
import type { PullAnswer, PullHarness, TransportHarness } from './transport-harness.js';
import { runTransportSuite, transportSuiteCases } from './transport-suite.js';

const pullQuery = z.object({
  after: z.coerce.number().int().min(0).optional(),
  wait: z.coerce.number().int().min(0).max(60_000).default(0),
});

/**
 * The smallest pull transport: `GET /v1/pull/:id?after=&wait=` answers `{ data, next }` with the events
 * of a durable subscription not yet acknowledged (a request with `after` acknowledges up to it), waiting
 * up to `wait` ms for one. It keeps them in memory. `ignoreStop` makes a broken one, whose waiting
 * requests wait out their wait when the server stops.
 */
function pullTransport({ ignoreStop = false } = {}): Transport {
  const unacknowledged = new Map<string, HeraldEvent[]>();
  const waiting = new Set<() => void>();
  let stopping = false;
  let stopListening: (() => void) | undefined;
  const wakeAll = () => {
    for (const wake of waiting) wake();
  };
  const waitForEvents = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        waiting.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      waiting.add(wake);
    });
  return {
    name: 'pull',
    async start({ bus, subscriptions, http }) {
      stopListening = bus.onEvents((events) => {
        for (const event of events) {
          for (const { id } of subscriptions.match(event, 'pull')) unacknowledged.set(id, [...(unacknowledged.get(id) ?? []), event]);
        }
        wakeAll();
      });
      http.route(
        defineRoute({
          method: 'GET',
          path: '/v1/pull/:id',
          query: pullQuery,
          async handle({ principal, params, query }) {
            const subscription = await subscriptions.get(params.id as string);
            if (subscription?.transport !== 'pull' || !canAccess(principal, subscription)) throw new NotFoundError('The subscription');
            const { after, wait } = query;
            const pending = () => unacknowledged.get(subscription.id) ?? [];
            if (after !== undefined) unacknowledged.set(subscription.id, pending().filter((event) => event.seq > after));
            if (pending().length === 0 && wait > 0 && !(stopping && !ignoreStop)) await waitForEvents(wait);
            const data = pending().slice(0, 100);
            return { body: { data, next: String(data.at(-1)?.seq ?? after ?? 0) } };
          },
        }),
      );
    },
    async stop() {
      stopping = true;
      stopListening?.();
      if (!ignoreStop) wakeAll();
    },
  };
}

const pull: PullHarness = {
  async pull(app, { credential, subscriptionId, after, wait }): Promise<PullAnswer> {
    const query = new URLSearchParams({ wait: String(wait), ...(after !== undefined ? { after } : {}) });
    const response = await fetch(`${app.baseUrl}/v1/pull/${subscriptionId}?${query}`, { headers: { authorization: `Bearer ${credential}` } });
    if (!response.ok) throw new Error(`the pull answered ${response.status}`);
    const { data, next } = (await response.json()) as { data: HeraldEvent[]; next: string };
    return { events: data, next };
  },
};

function pullHarness(create: () => Transport, options: TransportHarness['options'] = {}): TransportHarness {
  return {
    transport: create,
    options,
    pull,
    async receive(app, { consumer, types }) {
      const credential = await app.consumerKey(consumer);
      const { status, body } = await app.api('POST', '/v1/subscriptions', { transport: 'pull', types }, credential);
      if (status !== 201) throw new Error(`creating a subscription answered ${status}`);
      return pullingReceiver(app, pull, { credential, subscriptionId: body.id });
    },
  };
}

runTransportSuite('pull', pullHarness(() => pullTransport()));

describe('the transport suite fails a broken pull transport', () => {
  it('whose waiting requests wait out their wait when the server stops', async () => {
    // The server cuts what is still open 2 s into close(), so that the request ends unanswered.
    const broken = pullHarness(() => pullTransport({ ignoreStop: true }), { shutdownTimeout: 2_000 });
    const stopCase = transportSuiteCases(broken).find((check) => check.name.startsWith('stops gracefully'));
    await expect(stopCase?.run()).rejects.toThrow(/was not answered/);
  }, 30_000);

  it('the suite gives a pull transport the pull stop case, and a transport that sends the other one', () => {
    const stopCaseOf = (harness: TransportHarness) => transportSuiteCases(harness).find((check) => check.name.startsWith('stops gracefully'))?.name;
    expect(stopCaseOf(pullHarness(() => pullTransport()))).toMatch(/answers a request waiting/);
    const { pull: _pull, ...sending } = pullHarness(() => pullTransport());
    expect(stopCaseOf(sending)).toBe('stops gracefully');
  });
});
