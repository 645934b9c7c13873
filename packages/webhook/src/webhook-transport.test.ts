import type { HeraldEvent } from '@herald/core';
import { runTransportSuite, type TestApp } from '@herald/testkit';
import { startReceiver, verifiedEvent } from './test-receiver.test-support.js';
import { webhook } from './webhook-transport.js';

/**
 * The conformance suite. Its subscriptions are `ordered`: the suite checks that events arrive in seq
 * order, which webhooks promise only for ordered subscriptions (the others send up to `concurrency` at once).
 * Every request is checked with the independent `standardwebhooks` verifier.
 */
runTransportSuite('webhook', {
  transport: () => webhook({ retrySchedule: [0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4], pollInterval: 100 }),
  push: { module: new URL('./webhook-push-node.test-support.ts', import.meta.url) },
  options: { env: { HERALD_WEBHOOK_ALLOW_PRIVATE: '1' } },
  // Push only: no client connections, so the suite's connection cases do not apply; its own routes must stay the consumer's.
  subscriptionRoutes: [
    { method: 'GET', path: '/v1/subscriptions/:id/deliveries' },
    { method: 'POST', path: '/v1/subscriptions/:id/replay', body: { after: 0 } },
    { method: 'GET', path: '/v1/subscriptions/:id/replay' },
    { method: 'POST', path: '/v1/subscriptions/:id/secret/rotate', body: {} },
  ],
  async receive(app: TestApp, { consumer, types }) {
    const events: HeraldEvent[] = [];
    const failures: string[] = [];
    let secret: string | undefined;
    let failing = false;
    const receiver = await startReceiver((request) => {
      if (!secret) return { status: 503 };
      if (failing) return { status: 500 };
      try {
        events.push(verifiedEvent(secret, request));
        return { status: 200 };
      } catch (error) {
        failures.push(String(error));
        return { status: 400 };
      }
    });
    const key = await app.consumerKey(consumer);
    const { status, body } = await app.api(
      'POST',
      '/v1/subscriptions',
      { transport: 'webhook', types, config: { url: receiver.url, ordered: true } },
      key,
    );
    if (status !== 201) throw new Error(`creating a webhook subscription answered ${status}: ${JSON.stringify(body)}`);
    secret = body.config.secret;
    return {
      subscriptionId: body.id,
      events,
      fail(refuse) {
        failing = refuse;
      },
      async close() {
        await receiver.close();
        if (failures.length > 0) throw new Error(`requests failed standardwebhooks verification: ${failures.join('; ')}`);
      },
    };
  },
});
