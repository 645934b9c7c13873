import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../../testkit/src/index.js';
import { describe, expect, it } from 'vitest';
import { Endpoint } from './endpoint-state.js';

describe('Endpoint', () => {
  it('wakes once, at the earliest time it was asked for', async () => {
    const woken: number[] = [];
    const started = Date.now();
    const endpoint = new Endpoint('sub_1', started, () => woken.push(Date.now() - started));
    endpoint.wakeAt(started + 20_000);
    endpoint.wakeAt(started + 30);
    endpoint.wakeAt(started + 10_000);
    await waitFor(() => woken.length > 0, 'the wake-up', 5_000);
    expect(woken[0]).toBeGreaterThanOrEqual(28);
    await sleep(100);
    expect(woken).toHaveLength(1);
    endpoint.sleep();
  });

  it('does not wake once put to sleep', async () => {
    let woken = 0;
    const endpoint = new Endpoint('sub_1', Date.now(), () => {
      woken += 1;
    });
    endpoint.wakeAt(Date.now() + 20);
    endpoint.sleep();
    await sleep(60);
    expect(woken).toBe(0);
  });

  it('counts as busy what is in flight and what waits for a slot', () => {
    const endpoint = new Endpoint('sub_1', Date.now(), () => {});
    endpoint.sending.add({} as never).add({} as never);
    endpoint.queue.push({} as never, {} as never);
    expect(endpoint.busy).toBe(4);
  });
});
