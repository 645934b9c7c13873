import { Agent, get } from 'node:http';
import type { HeraldEvent } from '@herald/core';
import { missingCapabilities, type TestApp, type TransportHarness, transportSuiteCases } from '@herald/testkit';
import { describe, it } from 'vitest';
import { type PollTransport, poll } from './poll-transport.js';

/** One poll over `node:http`, whose answer is read in the socket's own callbacks (fetch takes several turns of the event loop more). */
function pollOnce(url: string, key: string, agent: Agent): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent, headers: { authorization: `Bearer ${key}` } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      response.on('error', reject);
    }).on('error', reject);
  });
}

/**
 * A consumer of a durable `poll` subscription made over REST: it polls in a loop, each time with the
 * previous answer's `next` as `after` (acknowledging what it got), until it is closed. A failed poll (the
 * server stopped) is tried again shortly.
 */
async function pollingConsumer(app: TestApp, { consumer, types }: { consumer: string; types: string[] }) {
  const key = await app.consumerKey(consumer);
  const { status, body } = await app.api('POST', '/v1/subscriptions', { transport: 'poll', types }, key);
  if (status !== 201) throw new Error(`creating a poll subscription answered ${status}: ${JSON.stringify(body)}`);
  const subscriptionId: string = body.id;
  const events: HeraldEvent[] = [];
  const agent = new Agent({ keepAlive: true });
  let closed = false;
  const loop = (async () => {
    let after: number | undefined;
    while (!closed) {
      const query = new URLSearchParams({ subscription: subscriptionId, wait: '5', ...(after !== undefined ? { after: String(after) } : {}) });
      try {
        const answer = await pollOnce(`${app.baseUrl}/v1/poll?${query}`, key, agent);
        if (answer.status !== 200) throw new Error(`a poll answered ${answer.status}`);
        const page = JSON.parse(answer.text) as { data: HeraldEvent[]; next: number };
        events.push(...page.data);
        after = page.next;
      } catch {
        if (!closed) await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  })();
  return {
    subscriptionId,
    events,
    close: async () => {
      closed = true;
      agent.destroy();
      await loop;
    },
  };
}

const harness: TransportHarness = {
  transport: (): PollTransport => poll(),
  receive: pollingConsumer,
};

/**
 * The suite's one call; switch it to `runTransportSuite('poll', harness)` once testkit knows pull
 * transports. Until then one case is left out: `stops gracefully` counts the events a client reads after
 * close() resolved, which for a request/response transport measures how late the client parses the last
 * answer (written before the server closed), not what the server sends. poll-http.test.ts checks poll's stop.
 */
const leftOut = new Set(['stops gracefully']);
const cases = transportSuiteCases(harness).filter((check) => missingCapabilities(harness, check).length === 0 && !leftOut.has(check.name));
describe(`transport suite: poll, ${cases.length} cases (those that need neither connect() nor push, but for ${[...leftOut].join(', ')})`, () => {
  for (const check of cases) it(check.name, check.run, 60_000);
});
