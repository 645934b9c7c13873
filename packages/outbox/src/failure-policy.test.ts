import { describe, expect, it } from 'vitest';
import { FailurePolicy, type FailureState } from './failure-policy.js';

/** A policy over an outbox whose run of failures began at `since` (as every node's attempts have it). */
function policy(since: { at: number | undefined }, disableAfter = 1_000) {
  const asked: string[] = [];
  const disabled: [string, string][] = [];
  let release: (() => void) | undefined;
  const failures = new FailurePolicy({
    disableAfter,
    failingSince: async (id) => {
      asked.push(id);
      return since.at;
    },
    disable: async (id, reason) => {
      disabled.push([id, reason]);
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    },
  });
  return { failures, asked, disabled, release: () => release?.() };
}

describe('FailurePolicy', () => {
  it('disables once every attempt has failed for the window, asking the outbox again before it does', async () => {
    const since = { at: undefined as number | undefined };
    const { failures, asked, disabled, release } = policy(since, 86_400_000);
    const state: FailureState = {};
    await failures.failed('sub_1', state, 1_000);
    expect(state.since).toBe(1_000);
    expect(asked).toEqual(['sub_1']);
    await failures.failed('sub_1', state, 2_000);
    expect(asked).toEqual(['sub_1']);
    since.at = 1_000;
    const disabling = failures.failed('sub_1', state, 1_000 + 86_400_000);
    await new Promise((resolve) => setImmediate(resolve));
    expect(asked).toEqual(['sub_1', 'sub_1']);
    expect(disabled).toEqual([['sub_1', 'every attempt failed for 1 days']]);
    release();
    await disabling;
  });

  it('does not disable when another node delivered meanwhile', async () => {
    const since = { at: 1_000 as number | undefined };
    const { failures, disabled } = policy(since);
    const state: FailureState = {};
    await failures.failed('sub_1', state, 1_500);
    // Another node delivered at 1,800 and failed at 1,900 since: the run began then.
    since.at = 1_900;
    await failures.failed('sub_1', state, 2_100);
    expect(disabled).toEqual([]);
    expect(state.since).toBe(1_900);
  });

  it('forgets the run when an attempt delivers', async () => {
    const { failures, asked } = policy({ at: undefined });
    const state: FailureState = {};
    await failures.failed('sub_1', state, 1_000);
    failures.delivered(state);
    expect(state.since).toBeNull();
    await failures.failed('sub_1', state, 5_000);
    expect(state.since).toBe(5_000);
    expect(asked).toEqual(['sub_1']);
  });

  it('disables at once when told, and only once while the attempts in flight fail too', async () => {
    const { failures, disabled, release } = policy({ at: undefined });
    const state: FailureState = {};
    const first = failures.disable('sub_1', state, 'the endpoint answered 410 Gone');
    await failures.disable('sub_1', state, 'the endpoint answered 410 Gone');
    expect(disabled).toHaveLength(1);
    release();
    await first;
    expect(state.disabling).toBe(false);
  });
});
