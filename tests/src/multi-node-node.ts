/**
 * One Herald node of the multi-node tests, run as its own process by multi-node-cluster.ts. Every node
 * is identical: PostgreSQL for the log and the outbox, Redis to ring the others, all three transports.
 * Configured by the environment. Prints `worker <id>` (its webhook worker) and `listening <port>` once
 * it serves, then `attempt <delivery id> <outcome>` after each webhook attempt.
 */
import { defineEventType, postgresStore } from '@herald/core';
import { redisBroker } from '@herald/redis';
import { createHerald } from '@herald/server';
import { sse } from '@herald/sse';
import { webhook } from '@herald/webhook';
import { websocket } from '@herald/websocket';
import { z } from 'zod';

const env = process.env;
const required = (name: string): string => {
  const value = env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

export const clusterEventTypes = [
  defineEventType('order.created', z.object({ node: z.string(), n: z.number().int() })),
  defineEventType('order.paid', z.object({ node: z.string(), n: z.number().int() })),
  defineEventType('order.shipped', z.object({ node: z.string(), n: z.number().int() })),
  defineEventType('order.refunded', z.object({ node: z.string(), n: z.number().int() })),
];

const hooks = webhook({
  timeout: Number(env.MULTI_NODE_WEBHOOK_TIMEOUT ?? 10_000),
  lease: Number(env.MULTI_NODE_WEBHOOK_LEASE ?? 15_000),
  pollInterval: 200,
  retrySchedule: [0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1],
  allowPrivate: true,
  // Pipes are synchronous on Linux: a line written here survives SIGKILL.
  onAttempt: (attempt) => process.stdout.write(`attempt ${attempt.deliveryId} ${attempt.outcome}\n`),
});

// A node named by MULTI_NODE_FROM_ENV finds its store and broker from HERALD_DATABASE and HERALD_BROKER, as the server app does.
const fromEnv = env.MULTI_NODE_FROM_ENV === '1';
const herald = createHerald({
  ...(fromEnv
    ? {}
    : {
        store: postgresStore({ url: required('MULTI_NODE_DATABASE'), maxConnections: 5 }),
        broker: redisBroker({ url: required('MULTI_NODE_REDIS'), prefix: env.MULTI_NODE_REDIS_PREFIX ?? '', maxReconnectDelay: 200 }),
      }),
  transports: [hooks, websocket(), sse()],
  eventTypes: clusterEventTypes,
  adminKey: required('HERALD_ADMIN_KEY'),
  logLevel: env.HERALD_LOG_LEVEL ?? 'warn',
  env,
});
const { port } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: true });
process.stdout.write(`worker ${hooks.workerId}\nlistening ${port}\n`);
