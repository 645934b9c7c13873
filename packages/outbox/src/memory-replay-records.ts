import type { Lease, ReplayRecords } from './outbox.js';
import type { ReplayView } from './replay-view.js';

/** How long a finished replay stays visible. */
const finishedRetention = 3_600_000;

interface Recorded {
  view: ReplayView;
  worker: string;
}

/**
 * The replays of this process only, for an outbox without {@link Outbox.replays}: other nodes neither see
 * nor take them over, and a finished one is forgotten after an hour.
 */
export class MemoryReplayRecords implements ReplayRecords {
  readonly #replays = new Map<string, Recorded>();

  async begin(replay: ReplayView, lease: Lease): Promise<ReplayView | undefined> {
    this.#forgetFinished(lease.now);
    const running = this.#running(replay.subscriptionId);
    if (running) return { ...running.view };
    this.#replays.set(replay.subscriptionId, { view: { ...replay }, worker: lease.worker });
    return undefined;
  }

  async progress(replay: ReplayView, lease: Lease): Promise<boolean> {
    return this.#write(replay, lease.worker);
  }

  async finish(replay: ReplayView, worker: string): Promise<void> {
    this.#write(replay, worker);
  }

  async latest(subscriptionId: string): Promise<ReplayView | undefined> {
    this.#forgetFinished(Date.now());
    const recorded = this.#replays.get(subscriptionId);
    return recorded && { ...recorded.view };
  }

  async cancel(subscriptionId: string, error: string, now: number): Promise<ReplayView | undefined> {
    const running = this.#running(subscriptionId);
    if (!running) return undefined;
    running.view = { ...running.view, status: 'cancelled', finishedAt: new Date(now).toISOString(), error };
    return { ...running.view };
  }

  async takeOver(): Promise<ReplayView[]> {
    return [];
  }

  #forgetFinished(now: number): void {
    for (const [id, { view }] of this.#replays) {
      if (view.finishedAt !== null && now - Date.parse(view.finishedAt) > finishedRetention) this.#replays.delete(id);
    }
  }

  #running(subscriptionId: string): Recorded | undefined {
    const recorded = this.#replays.get(subscriptionId);
    return recorded?.view.status === 'running' ? recorded : undefined;
  }

  /** Records `replay` as it is now, if it still runs under `worker`; whether it did. */
  #write(replay: ReplayView, worker: string): boolean {
    const running = this.#running(replay.subscriptionId);
    if (running?.view.id !== replay.id || running.worker !== worker) return false;
    running.view = { ...replay };
    return true;
  }
}
