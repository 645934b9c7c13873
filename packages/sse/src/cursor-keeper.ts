import type { Logger, SubscriptionRegistry } from '@herald/core';

/**
 * Saves how far durable subscriptions have been streamed, at most once per interval per
 * subscription. Cursors only move forward, also when several streams attach to one subscription.
 */
export class CursorKeeper {
  readonly #subscriptions: SubscriptionRegistry;
  readonly #logger: Logger;
  readonly #pending = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  #flushing: Promise<void> = Promise.resolve();

  constructor(subscriptions: SubscriptionRegistry, logger: Logger, interval: number) {
    this.#subscriptions = subscriptions;
    this.#logger = logger;
    this.#timer = setInterval(() => void this.flush(), interval);
    this.#timer.unref();
  }

  /** Records that subscription `id` has been streamed up to `seq`. */
  advance(id: string, seq: number): void {
    if (seq > (this.#pending.get(id) ?? 0)) this.#pending.set(id, seq);
  }

  /** Stores every pending cursor; resolves when they are written. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      const batch = [...this.#pending];
      this.#pending.clear();
      await Promise.all(
        batch.map(async ([id, seq]) => {
          try {
            const current = await this.#subscriptions.get(id);
            if (current && seq > current.cursor) await this.#subscriptions.update(id, { cursor: seq });
          } catch (error) {
            this.#logger.warn({ err: error, subscription: id }, 'saving an SSE cursor failed; retrying on the next flush');
            this.advance(id, seq);
          }
        }),
      );
    });
    return this.#flushing;
  }

  /** Stores what is pending and stops. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
