import type { HeraldEvent } from '@herald/core';
import { runTransportSuite, type TestApp } from '@herald/testkit';
import { type SseTransport, sse } from './sse-transport.js';
import { collectEvents, eventSourceWithKey, opened } from './stream-app.test-support.js';

/** Each receiver is a durable `sse` subscription made over REST, read by the `eventsource` package's EventSource. */
runTransportSuite('sse', {
  transport: (): SseTransport => sse({ retry: 200 }),
  async receive(app: TestApp, { consumer, types }) {
    const key = await app.consumerKey(consumer);
    const { status, body } = await app.api('POST', '/v1/subscriptions', { transport: 'sse', types }, key);
    if (status !== 201) throw new Error(`creating an sse subscription answered ${status}: ${JSON.stringify(body)}`);
    const source = eventSourceWithKey(`${app.baseUrl}/v1/stream?subscription=${body.id}&named=false`, key);
    const events: HeraldEvent[] = collectEvents(source);
    await opened(source);
    return { subscriptionId: body.id as string, events, close: async () => source.close() };
  },
});
