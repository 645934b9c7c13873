import { expect } from 'vitest';
import { z } from 'zod';
import type { TestApp } from '../../testkit/src/index.js';
import type { PushResult } from './attempt-outcome.js';
import type { PushOptions } from './push-options.js';
import { definePushTransport, pushConfigFields } from './push-transport.js';

/** What a destination answers to an event (the `n` of its data), sent to it `sentBefore` times before. */
export type ScriptedAnswer = (destination: string, n: number, sentBefore: number) => PushResult | Promise<PushResult>;

/**
 * A push transport whose destinations answer as `answer` says. `onTarget` sees each target the engine
 * works out for a stored config (once per config), e.g. to tell when it is collected.
 */
export function scripted(answer: ScriptedAnswer, options: PushOptions = {}, onTarget?: (target: object, destination: string) => void) {
  const sent = new Map<string, number>();
  const transport = definePushTransport({
    name: 'scripted',
    configSchema: z.strictObject({ destination: z.string(), ...pushConfigFields }),
    // A lease short enough for a claimed delivery whose attempt was not kept to be claimed again soon.
    options: { pollInterval: 50, retrySchedule: [0, 0.1, 0.1], jitter: 0, timeout: 1_000, lease: 3_000, ...options },
    target: (config) => {
      const target = { destination: config.destination };
      onTarget?.(target, config.destination);
      return target;
    },
    async send({ event }, { destination }) {
      const key = `${destination} ${event.id}`;
      const before = sent.get(key) ?? 0;
      sent.set(key, before + 1);
      return answer(destination, (event.data as { n: number }).n, before);
    },
  });
  return { transport, timesSent: (destination: string, eventId: string) => sent.get(`${destination} ${eventId}`) ?? 0 };
}

/** A `scripted` subscription of consumer `acme` to `order.created`, sent to `destination`; its id. */
export async function subscribe(app: TestApp, destination: string): Promise<string> {
  const config = { destination };
  const { status, body } = await app.api('POST', '/v1/subscriptions', { transport: 'scripted', types: ['order.created'], config }, await app.consumerKey('acme'));
  expect(status).toBe(201);
  return body.id;
}
