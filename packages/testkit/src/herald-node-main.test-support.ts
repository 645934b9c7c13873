/**
 * A Herald node in a process of its own (herald-node.test-support.ts), configured by its environment as
 * the server app is: `HERALD_DATABASE`, `HERALD_BROKER`, `HERALD_RATE_LIMIT_STORE`, `HERALD_ADMIN_KEY`,
 * `HERALD_RATE_LIMIT`, `HERALD_LOG_LEVEL`... with the SSE transport and one event type, `order.created`.
 * It listens on 127.0.0.1 with an ephemeral port, prints `{"baseUrl":...,"adminKey":...}` as one line once it
 * is ready (its logs, pino's JSON lines, go to stdout too), and closes on SIGTERM. When it cannot start, it
 * exits with 1.
 */
import { eventTypeFromJsonSchema } from '@herald/core';
import { createHerald } from '../../server/src/index.js';
import { sse } from '../../sse/src/index.js';

const herald = createHerald({
  transports: [sse()],
  eventTypes: [eventTypeFromJsonSchema('order.created', { type: 'object' })],
});
try {
  const { url } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: true });
  process.stdout.write(`${JSON.stringify({ baseUrl: url, adminKey: process.env.HERALD_ADMIN_KEY })}\n`);
} catch {
  // Herald logged why.
  process.exit(1);
}
