import type { Logger } from './logger.js';
import type { SubscriptionRegistry } from './subscription-registry.js';

/**
 * Writes how far durable subscriptions have got (acknowledged over WebSocket, streamed over SSE) to
 * their cursors, coalesced: many positions between two flushes cost one write per subscription. Cursors
 * only move forward, also when several connections attach to one subscription.
 */
export class CursorWriter {
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

  /** Records that subscription `id` has got up to `seq`. */
  advance(id: string, seq: number): void {
    if (seq > (this.#pending.get(id) ?? -1)) this.#pending.set(id, seq);
  }

  /** Writes every pending cursor; resolves when they are stored. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      const batch = [...this.#pending];
      this.#pending.clear();
      await Promise.all(
        batch.map(async ([id, seq]) => {
          try {
            await this.#subscriptions.advanceCursor(id, seq);
          } catch (error) {
            this.#logger.warn({ err: error, subscription: id }, 'storing a cursor failed; retrying on the next flush');
            this.advance(id, seq);
          }
        }),
      );
    });
    return this.#flushing;
  }

  /** Writes what is pending and stops the timer. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
