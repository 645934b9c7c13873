import { runTransportSuite, type TestApp } from '@herald/testkit';
import { brokerUrl, startConsumer } from './amqp-broker.test-support.js';
import { amqp } from './amqp-transport.js';

/**
 * The conformance suite against the machine's RabbitMQ, each receiver an amqplib consumer of a queue of
 * its own. Its subscriptions are `ordered`, as the suite checks that events arrive in seq order. A
 * receiver fails by losing its exchange: publishing to it is a failed attempt until it is back.
 */
runTransportSuite('amqp', {
  transport: () => amqp({ retrySchedule: [0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4], pollInterval: 100 }),
  push: { module: new URL('./amqp-push-node.test-support.ts', import.meta.url) },
  options: { env: { HERALD_ALLOW_PRIVATE: '1' } },
  subscriptionRoutes: [
    { method: 'GET', path: '/v1/subscriptions/:id/deliveries' },
    { method: 'POST', path: '/v1/subscriptions/:id/replay', body: { after: 0 } },
    { method: 'GET', path: '/v1/subscriptions/:id/replay' },
  ],
  async receive(app: TestApp, { consumer, types }) {
    const queue = await startConsumer();
    const key = await app.consumerKey(consumer);
    const { status, body } = await app.api('POST', '/v1/subscriptions', { transport: 'amqp', types, config: { url: brokerUrl, exchange: queue.exchange, ordered: true } }, key);
    if (status !== 201) {
      await queue.close();
      throw new Error(`creating an AMQP subscription answered ${status}: ${JSON.stringify(body)}`);
    }
    return {
      subscriptionId: body.id,
      get events() {
        return queue.events;
      },
      fail: (failing) => queue.removeExchange(failing),
      close: () => queue.close(),
    };
  },
});
