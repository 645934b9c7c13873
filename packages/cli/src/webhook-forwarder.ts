import type { DeliveredEvent } from '@herald/client';
import { type StoredWebhookConfig, webhookRequest } from '@herald/webhook/signing';
import { unreachableReason } from './herald-api.js';

/** One attempt to hand an event to the local endpoint, as reported. */
export interface ForwardAttempt {
  event: DeliveredEvent;
  /** 1 for the first. */
  attempt: number;
  /** The endpoint's status; absent when it did not answer. */
  status?: number;
  /** Why it did not answer (connection refused, timeout...). */
  error?: string;
  /** Milliseconds until the answer or the failure. */
  latency: number;
  /** `retrying` is followed by another attempt after `retryIn` ms. */
  outcome: 'delivered' | 'retrying' | 'failed';
  retryIn?: number;
}

export interface ForwarderOptions {
  /** The local endpoint. */
  url: string;
  /** The `whsec_` secret the requests are signed with. */
  secret: string;
  /** Called after each attempt. */
  report(attempt: ForwardAttempt): void;
  /** Waits before the second, third... attempt, in ms. @default [1000, 2000, 4000] */
  retryDelays?: readonly number[];
  /** How long an attempt may take, in ms. @default 15000 */
  timeout?: number;
}

/** Whether another attempt may help: no answer, a timeout, 429 or 5xx. Other answers are the handler's word. */
function retryable(status: number | undefined): boolean {
  return status === undefined || status === 408 || status === 429 || status >= 500;
}

/**
 * Forwards events to a local endpoint as Herald's webhook transport delivers them: the envelope as
 * the body, signed after Standard Webhooks with the transport's own request builder, from
 * `@herald/webhook/signing` (which loads none of the transport). An endpoint that is down, times out
 * or answers 5xx gets a few more attempts; then the event is reported failed.
 */
export class WebhookForwarder {
  readonly #config: StoredWebhookConfig;
  readonly #report: ForwarderOptions['report'];
  readonly #retryDelays: readonly number[];
  readonly #timeout: number;

  constructor(options: ForwarderOptions) {
    this.#config = { url: options.url, secret: options.secret };
    this.#report = options.report;
    this.#retryDelays = options.retryDelays ?? [1000, 2000, 4000];
    this.#timeout = options.timeout ?? 15_000;
  }

  /** Resolves once the event was delivered or given up on; never rejects. */
  async forward(event: DeliveredEvent): Promise<void> {
    const body = JSON.stringify(event);
    for (let attempt = 1; ; attempt++) {
      const { url, headers } = webhookRequest(this.#config, event.id, body, Date.now());
      const started = performance.now();
      let status: number | undefined;
      let error: string | undefined;
      try {
        const response = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(this.#timeout) });
        status = response.status;
        await response.body?.cancel();
      } catch (failure) {
        error = unreachableReason(failure);
      }
      const latency = Math.round(performance.now() - started);
      const retryIn = this.#retryDelays[attempt - 1];
      const delivered = status !== undefined && status >= 200 && status < 300;
      const retrying = !delivered && retryable(status) && retryIn !== undefined;
      this.#report({
        event,
        attempt,
        ...(status !== undefined ? { status } : {}),
        ...(error !== undefined ? { error } : {}),
        latency,
        outcome: delivered ? 'delivered' : retrying ? 'retrying' : 'failed',
        ...(retrying ? { retryIn } : {}),
      });
      if (!retrying) return;
      await new Promise((resolve) => setTimeout(resolve, retryIn));
    }
  }
}
