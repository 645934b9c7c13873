import { runTransportSuite, type TestApp } from '@herald/testkit';
import { natsServer, startStreamConsumer } from './nats-server.test-support.js';
import { nats } from './nats-transport.js';

/**
 * The conformance suite against the machine's NATS with JetStream, each receiver a durable consumer of
 * a stream of its own. Its subscriptions are `ordered`, as the suite checks that events arrive in seq
 * order. A receiver fails by its stream no longer capturing the subject: publishing is a failed attempt until it does again.
 */
runTransportSuite('nats', {
  transport: () => nats({ retrySchedule: [0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4], pollInterval: 100, timeout: 3_000 }),
  push: { module: new URL('./nats-push-node.test-support.ts', import.meta.url) },
  options: { env: { HERALD_ALLOW_PRIVATE: '1' } },
  subscriptionRoutes: [
    { method: 'GET', path: '/v1/subscriptions/:id/deliveries' },
    { method: 'POST', path: '/v1/subscriptions/:id/replay', body: { after: 0 } },
    { method: 'GET', path: '/v1/subscriptions/:id/replay' },
  ],
  async receive(app: TestApp, { consumer, types }) {
    const stream = await startStreamConsumer();
    const key = await app.consumerKey(consumer);
    const config = { servers: natsServer, subject: `${stream.prefix}.{type}`, ordered: true };
    const { status, body } = await app.api('POST', '/v1/subscriptions', { transport: 'nats', types, config }, key);
    if (status !== 201) {
      await stream.close();
      throw new Error(`creating a NATS subscription answered ${status}: ${JSON.stringify(body)}`);
    }
    return {
      subscriptionId: body.id,
      get events() {
        return stream.events;
      },
      fail: (failing) => stream.refuse(failing),
      close: () => stream.close(),
    };
  },
});
