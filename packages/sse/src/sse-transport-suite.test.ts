import type { HeraldEvent } from '@herald/core';
import { type ClientConnection, type ConnectRequest, ConnectionRefusedError, type Refusal, runTransportSuite, type TestApp } from '@herald/testkit';
import { type SseTransport, sse } from './sse-transport.js';
import { collectEvents, eventSourceWithKey, opened } from './stream-app.test-support.js';

const refusals: Record<number, Refusal> = { 401: 'unauthorized', 403: 'forbidden', 404: 'not-found', 429: 'too-many-connections' };

/** A stream read by the `eventsource` package's EventSource, open once its `ready` frame arrived; refused with the status of the problem answer. */
async function connect(app: TestApp, { credential, types, subscription }: ConnectRequest): Promise<ClientConnection> {
  const query = types !== undefined ? `types=${types.join(',')}` : `subscription=${subscription}`;
  const source = eventSourceWithKey(`${app.baseUrl}/v1/stream?${query}&named=false`, credential);
  const events: HeraldEvent[] = collectEvents(source);
  let end!: () => void;
  const ended = new Promise<void>((resolve) => (end = resolve));
  const finish = () => {
    source.close();
    end();
  };
  await new Promise<void>((resolve, reject) => {
    const refused = (error: Event) => {
      const code = (error as { code?: number }).code;
      source.close();
      const reason = code === undefined ? undefined : refusals[code];
      reject(reason ? new ConnectionRefusedError(reason, `HTTP ${code}`) : new Error(`the stream failed: ${(error as { message?: string }).message}`));
    };
    source.addEventListener('error', refused, { once: true });
    source.addEventListener(
      'ready',
      () => {
        source.removeEventListener('error', refused);
        resolve();
      },
      { once: true },
    );
  });
  // The server ends a stream with an `end` frame; the EventSource would reconnect after it.
  source.addEventListener('end', finish);
  source.addEventListener('error', finish);
  return { events, ended, close: async () => finish() };
}

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
  connect,
});
