/** Herald nodes with one push transport in processes of their own, for what Node reads only when a process starts, such as `NODE_EXTRA_CA_CERTS`. */
import { expect } from 'vitest';
import { spawnHeraldNode } from './herald-node.test-support.js';
import type { RestClient } from './test-app.js';
import { linger, waitFor } from './wait-for.js';

const mainScript = new URL('./push-node-process-main.test-support.ts', import.meta.url);

/**
 * Starts a Herald whose one transport is `factory` of `module` (called with a fast poll, a 3 s timeout and a
 * retry a minute after the first attempt), with `env` on top of this process's environment (undefined removes a
 * variable) and HERALD_ALLOW_PRIVATE=1; stopped when the test finishes.
 */
export function startPushNodeProcess(module: URL, factory: string, env: Record<string, string | undefined>): Promise<RestClient> {
  return spawnHeraldNode(mainScript, [module.href, factory], { HERALD_ALLOW_PRIVATE: '1', ...env }).started;
}

/** Publishes `count` events of order.created with data `{ n }` (0, 1, ...) over the REST API, one at a time; resolves with their ids. */
export async function publishOverRest(node: RestClient, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 0; n < count; n++) {
    const { status, body } = await node.api('POST', '/v1/events', { type: 'order.created', data: { n } });
    expect(status).toBe(202);
    ids.push(body.id as string);
  }
  return ids;
}

interface DeliveryView {
  eventId: string;
  status: string;
  attempts: { status: string; error: string | null }[];
}

/** A subscription's deliveries, as its node's admin sees them. */
async function deliveries(node: RestClient, subscriptionId: string): Promise<DeliveryView[]> {
  const { status, body } = await node.api('GET', `/v1/subscriptions/${subscriptionId}/deliveries`);
  expect(status).toBe(200);
  return body.data as DeliveryView[];
}

/**
 * Waits until `received()` holds as many events as `published`, then checks that they came once each and in
 * order, and that each delivery of `subscriptionId` was done at its first attempt.
 */
export async function expectDeliveredInOrder(node: RestClient, subscriptionId: string, received: () => readonly { id: string }[], published: string[]): Promise<void> {
  await waitFor(() => received().length >= published.length, `the ${published.length} events`);
  await linger(300);
  expect(received().map((event) => event.id)).toEqual(published);
  const done = await deliveries(node, subscriptionId);
  expect(done).toHaveLength(published.length);
  expect(done.every((delivery) => delivery.status === 'delivered' && delivery.attempts.length === 1)).toBe(true);
}

/** Waits for the first attempt of the delivery of `subscriptionId`, its only one, checks that it failed and is `eventId`'s; resolves with its error. */
export async function onlyFailedAttempt(node: RestClient, subscriptionId: string, eventId: string): Promise<string | null> {
  await waitFor(async () => ((await deliveries(node, subscriptionId))[0]?.attempts.length ?? 0) > 0, `the attempt of ${eventId}`);
  const [failed] = await deliveries(node, subscriptionId);
  expect(failed?.eventId).toBe(eventId);
  expect(failed?.attempts).toHaveLength(1);
  expect(failed?.attempts[0]?.status).toBe('failed');
  return failed?.attempts[0]?.error ?? null;
}
