/** What the failure policy knows of one destination. */
export interface FailureState {
  /** When its run of failures began: null when it is not failing, undefined when not known yet. */
  since?: number | null;
  /** A disable of its subscription is under way. */
  disabling?: boolean;
}

export interface FailurePolicyOptions {
  /** A subscription whose every attempt has failed for this long, in ms, is disabled. */
  disableAfter: number;
  /** When the run of failed attempts of a subscription began, as the outbox has it (every node's attempts). */
  failingSince(subscriptionId: string): Promise<number | undefined>;
  /** Disables a subscription and gives up its pending deliveries. */
  disable(subscriptionId: string, reason: string): Promise<void>;
}

/**
 * When a failing destination's subscription is disabled: at once when the destination says so (410 Gone),
 * or once every attempt has failed for `disableAfter`. The run's start is kept per destination and asked
 * of the outbox again before disabling, since another node may have delivered meanwhile.
 */
export class FailurePolicy {
  readonly #options: FailurePolicyOptions;

  constructor(options: FailurePolicyOptions) {
    this.#options = options;
  }

  /** An attempt delivered: the destination is not failing. */
  delivered(state: FailureState): void {
    state.since = null;
  }

  /** An attempt failed at `failedAt`: disables the subscription when every attempt has failed for `disableAfter`. */
  async failed(subscriptionId: string, state: FailureState, failedAt: number): Promise<void> {
    const known = state.since !== undefined;
    if (!known) state.since = await this.#options.failingSince(subscriptionId);
    state.since ??= failedAt;
    if (failedAt - state.since < this.#options.disableAfter) return;
    // Another node may have delivered since: ask the outbox before disabling (unless it was just asked).
    const since = known ? await this.#options.failingSince(subscriptionId) : state.since;
    state.since = since ?? failedAt;
    if (since === undefined || failedAt - since < this.#options.disableAfter) return;
    const days = (this.#options.disableAfter / 86_400_000).toFixed(2).replace(/\.?0+$/, '');
    await this.disable(subscriptionId, state, `every attempt failed for ${days} days`);
  }

  /** Disables the subscription now; the attempts still in flight fail too, and only the first disables it. */
  async disable(subscriptionId: string, state: FailureState, reason: string): Promise<void> {
    if (state.disabling) return;
    state.disabling = true;
    try {
      await this.#options.disable(subscriptionId, reason);
    } finally {
      state.disabling = false;
    }
  }
}
