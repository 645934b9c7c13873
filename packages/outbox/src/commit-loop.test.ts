import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../../testkit/src/index.js';
import { describe, expect, it } from 'vitest';
import { CommitLoop } from './commit-loop.js';

/** A loop whose cycles are counted, each taking what was asked before it (as the engine's does) and waiting for `hold` when it is set. */
function counted(options: ConstructorParameters<typeof CommitLoop>[2] = {}) {
  const state = { cycles: 0, errors: [] as unknown[], hold: undefined as Promise<void> | undefined, fail: false };
  const loop: CommitLoop = new CommitLoop(
    async () => {
      loop.clearAgain();
      state.cycles += 1;
      if (state.fail) throw new Error('the store refused the commit');
      await state.hold;
    },
    (error) => state.errors.push(error),
    options,
  );
  return { loop, state };
}

describe('CommitLoop', () => {
  it('runs one cycle for the kicks of one turn of the event loop, in its check phase', async () => {
    const { loop, state } = counted();
    loop.now();
    loop.now();
    loop.soon();
    expect(state.cycles).toBe(0);
    await loop.idle();
    expect(state.cycles).toBe(1);
  });

  it('runs once more after a cycle during which it was asked again', async () => {
    const { loop, state } = counted();
    let release = () => {};
    state.hold = new Promise((resolve) => {
      release = resolve;
    });
    loop.now();
    await sleep(5);
    expect(state.cycles).toBe(1);
    loop.now();
    loop.soon();
    expect(loop.again).toBe(true);
    state.hold = undefined;
    release();
    await loop.idle();
    expect(state.cycles).toBe(2);
    expect(loop.again).toBe(false);
  });

  it('gathers what is asked `soon` over the batch delay, and a cycle asked now takes it along', async () => {
    const { loop, state } = counted({ batchDelay: 40 });
    const asked = Date.now();
    let ranAfter = 0;
    loop.soon();
    loop.soon();
    await waitFor(() => state.cycles === 1 && (ranAfter ||= Date.now() - asked) > 0, 'the batched cycle');
    expect(ranAfter).toBeGreaterThanOrEqual(38);
    await loop.idle();
    loop.soon();
    loop.now();
    await loop.idle();
    // Had the `soon` kept its timer, it would have run a third cycle by now.
    await sleep(100);
    expect(state.cycles).toBe(2);
  });

  it('hands a failed cycle to onError and runs again when asked to retry later, unless the timers are cancelled', async () => {
    const { loop, state } = counted({ retryDelay: 30 });
    state.fail = true;
    loop.now();
    await loop.idle();
    expect(state.errors).toHaveLength(1);
    state.fail = false;
    loop.retryLater();
    loop.retryLater();
    await waitFor(() => state.cycles === 2, 'the retry');
    await loop.idle();
    await sleep(60);
    expect(state.cycles).toBe(2);
    loop.retryLater();
    loop.soon();
    loop.cancelTimers();
    await sleep(80);
    expect(state.cycles).toBe(2);
  });
});
