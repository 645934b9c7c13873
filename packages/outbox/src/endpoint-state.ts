import type { Subscription } from '@herald/core';
import type { FailureState } from './failure-policy.js';
import type { Delivery, NewDelivery } from './outbox.js';
import type { PushConfig, PushMessage } from './push-transport.js';
import { ThroughputEstimate } from './throughput-estimate.js';

/**
 * A claimed delivery waiting for a free slot, with what sending it takes; `held` (with its `hold`) when a
 * fan-out gave it to this worker without storing it; `startsRound` when a replay gave it without writing its final row.
 */
export interface Queued<TConfig extends PushConfig> extends PushMessage<TConfig> {
  held?: NewDelivery;
  hold?: string;
  startsRound?: true;
}

/** A claimed delivery that goes back unsent: stored ones are released, held ones created pending, a replay's unwritten ones replayed. */
export interface Unsent {
  delivery: Delivery;
  held?: NewDelivery;
  hold?: string;
  startsRound?: true;
}

/** One subscription's destination, as this node's delivery engine sees it. */
export class Endpoint<TConfig extends PushConfig> {
  readonly id: string;
  /** The subscription as last read; absent until it is known. */
  subscription?: Subscription<TConfig>;
  /** When `subscription` was read. */
  refreshedAt = 0;
  /** The attempts under way. */
  readonly sending = new Set<Queued<TConfig>>();
  /** Claimed and waiting for a free slot: sent as soon as one frees, without waiting for a commit. */
  readonly queue: Queued<TConfig>[] = [];
  readonly throughput: ThroughputEstimate;
  readonly failure: FailureState = {};
  /** The subscription was deleted: the endpoint is forgotten once nothing of it is in flight. */
  removed = false;
  readonly #wake: () => void;
  #timer?: NodeJS.Timeout;
  #timerAt = 0;

  /** `wake`: what to do when a wake-up set with {@link wakeAt} comes. */
  constructor(id: string, now: number, wake: () => void) {
    this.id = id;
    this.throughput = new ThroughputEstimate(now);
    this.#wake = wake;
  }

  /** Attempts under way. */
  get inFlight(): number {
    return this.sending.size;
  }

  /** Deliveries in flight or waiting for a slot. */
  get busy(): number {
    return this.inFlight + this.queue.length;
  }

  /** The subscription as read at `now`. */
  refresh(subscription: Subscription<TConfig>, now: number): void {
    this.subscription = subscription;
    this.refreshedAt = now;
  }

  /** Wakes the endpoint at `at`, unless a wake-up is set for then or earlier already. */
  wakeAt(at: number): void {
    if (this.#timer && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#wake();
      },
      Math.max(0, at - Date.now()),
    );
    this.#timer.unref();
  }

  /** Cancels the wake-up. */
  sleep(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
