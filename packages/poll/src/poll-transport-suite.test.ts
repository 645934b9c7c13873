import { Agent, get } from 'node:http';
import type { HeraldEvent } from '@herald/core';
import {
  type ClientConnection,
  type ConnectRequest,
  ConnectionRefusedError,
  type PullHarness,
  pullingReceiver,
  type Refusal,
  runTransportSuite,
  type TestApp,
} from '@herald/testkit';
import { type PollTransport, poll } from './poll-transport.js';

const refusals: Record<number, Refusal> = { 401: 'unauthorized', 403: 'forbidden', 404: 'not-found', 429: 'too-many-connections' };

interface Answer {
  status: number;
  page?: { data: HeraldEvent[]; next: number };
}

/** One poll over `node:http`, whose answer is read in the socket's own callbacks (fetch takes several turns of the event loop more). */
function pollOnce(app: TestApp, credential: string, query: Record<string, string>, agent: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    get(`${app.baseUrl}/v1/poll?${new URLSearchParams(query)}`, { agent, headers: { authorization: `Bearer ${credential}` } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, ...(response.statusCode === 200 ? { page: JSON.parse(text) } : {}) }));
      response.on('error', reject);
    }).on('error', reject);
  });
}

/**
 * A client connection: polls `query` in a loop from the `next` of its first answer, each time after the previous answer's `next` (acknowledging a
 * durable subscription's events), until it is closed, or until the server refuses it with a status that
 * trying again cannot change (401, 403, 404). Other failures (the server stopping) are tried again shortly.
 */
function pollInLoop(app: TestApp, credential: string, query: Record<string, string>, first: NonNullable<Answer['page']>): ClientConnection {
  const events: HeraldEvent[] = [...first.data];
  const agent = new Agent({ keepAlive: true });
  let closed = false;
  const ended = (async () => {
    let after = first.next;
    while (!closed) {
      try {
        const { status, page } = await pollOnce(app, credential, { ...query, wait: '5', after: String(after) }, agent);
        if (page) {
          events.push(...page.data);
          after = page.next;
          continue;
        }
        if (status === 401 || status === 403 || status === 404) return;
      } catch {}
      if (!closed) await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    events,
    ended,
    close: async () => {
      closed = true;
      agent.destroy();
      await ended;
    },
  };
}

/** A consumer's poll on its durable subscription, as the suite's pull cases make it. */
const pull: PullHarness = {
  async pull(app, { credential, subscriptionId, after, wait }) {
    const query = { subscription: subscriptionId, wait: String(wait / 1000), ...(after !== undefined ? { after } : {}) };
    const { status, page } = await pollOnce(app, credential, query, new Agent({ keepAlive: false }));
    if (!page) throw new Error(`the poll answered ${status}`);
    return { events: page.data, next: String(page.next) };
  },
};

/** A durable `poll` subscription made over REST, polled in a loop from its cursor. */
async function receive(app: TestApp, { consumer, types }: { consumer: string; types: string[] }) {
  const credential = await app.consumerKey(consumer);
  const { status, body } = await app.api('POST', '/v1/subscriptions', { transport: 'poll', types }, credential);
  if (status !== 201) throw new Error(`creating a poll subscription answered ${status}: ${JSON.stringify(body)}`);
  return pullingReceiver(app, pull, { credential, subscriptionId: body.id });
}

/** A first poll that does not wait says whether the server takes the client; the loop goes on from its `next`. */
async function connect(app: TestApp, { credential, types, subscription }: ConnectRequest): Promise<ClientConnection> {
  const query: Record<string, string> = types !== undefined ? { types: types.join(',') } : { subscription };
  const agent = new Agent({ keepAlive: false });
  const { status, page } = await pollOnce(app, credential, { ...query, wait: '0' }, agent);
  if (!page) {
    const reason = refusals[status];
    throw reason ? new ConnectionRefusedError(reason, `HTTP ${status}`) : new Error(`the first poll answered ${status}`);
  }
  return pollInLoop(app, credential, query, page);
}

runTransportSuite('poll', { transport: (): PollTransport => poll(), pull, receive, connect });
