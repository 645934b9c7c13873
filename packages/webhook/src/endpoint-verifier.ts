import { randomBytes } from 'node:crypto';
import { newId, type Subscription } from '@herald/core';
import type { PushContext } from '@herald/outbox';
import type { HttpSender } from './http-sender.js';
import { endpointVerified, type StoredWebhookConfig } from './webhook-config.js';
import { webhookRequest } from './webhook-request.js';

/** The `type` of the verification request's body. */
export const verificationEventType = 'herald.endpoint.verification';

/** The result of one verification request. */
export interface VerificationResult {
  verified: boolean;
  /** Why the endpoint was not verified. */
  error?: string;
}

const sweepInterval = 30_000;
const maxBackoff = 3_600_000;

/** True when the answer carries the challenge: as the whole body, or as `{"challenge": ...}`. */
export function echoesChallenge(body: string | undefined, challenge: string): boolean {
  if (body === undefined) return false;
  if (body.trim() === challenge) return true;
  try {
    const parsed = JSON.parse(body) as unknown;
    return typeof parsed === 'object' && parsed !== null && (parsed as { challenge?: unknown }).challenge === challenge;
  } catch {
    return false;
  }
}

/**
 * Endpoint verification, as WebSub does it: a subscription whose URL has not been verified gets a
 * signed POST with a random challenge, and becomes active once its endpoint answers 2xx with it.
 */
export class EndpointVerifier {
  readonly #context: PushContext<StoredWebhookConfig>;
  readonly #sender: HttpSender;
  readonly #timeout: number;
  readonly #inProgress = new Map<string, Promise<VerificationResult>>();
  /** Per subscription: failed tries and when the next one is due. */
  readonly #backoff = new Map<string, { failures: number; nextAt: number }>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #interval?: NodeJS.Timeout;
  #stopped = false;

  /** The context's `refresh` is told of every endpoint it verifies. */
  constructor(context: PushContext<StoredWebhookConfig>, sender: HttpSender, timeout: number) {
    this.#context = context;
    this.#sender = sender;
    this.#timeout = timeout;
  }

  start(): void {
    this.#interval = setInterval(() => void this.sweep(), sweepInterval);
    this.#interval.unref();
    void this.sweep();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#interval);
    for (const timer of this.#timers) clearTimeout(timer);
    await Promise.allSettled([...this.#inProgress.values()]);
  }

  /** A subscription needing verification is about to be stored: look for it shortly. */
  expect(): void {
    for (const delay of [50, 500, 2_000]) {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        void this.sweep();
      }, delay);
      timer.unref();
      this.#timers.add(timer);
    }
  }

  /** Sends a challenge to every webhook endpoint that is not verified and whose next try is due. */
  async sweep(): Promise<void> {
    if (this.#stopped) return;
    try {
      const now = Date.now();
      const waiting = (await this.#context.subscriptions.list({ transport: 'webhook' }))
        .filter((subscription) => this.#context.owns(subscription))
        .filter(
          (subscription) =>
            needsVerification(subscription) && !this.#inProgress.has(subscription.id) && (this.#backoff.get(subscription.id)?.nextAt ?? 0) <= now,
        );
      await Promise.all(waiting.map((subscription) => this.verify(subscription)));
    } catch (error) {
      this.#context.logger.warn({ err: error }, 'looking for webhook endpoints to verify failed');
    }
  }

  /** Challenges the endpoint of one subscription now. */
  verify(subscription: Subscription<StoredWebhookConfig>): Promise<VerificationResult> {
    let running = this.#inProgress.get(subscription.id);
    if (!running) {
      running = this.#challenge(subscription).finally(() => this.#inProgress.delete(subscription.id));
      this.#inProgress.set(subscription.id, running);
    }
    return running;
  }

  async #challenge(subscription: Subscription<StoredWebhookConfig>): Promise<VerificationResult> {
    const { config } = subscription;
    const challenge = randomBytes(24).toString('base64url');
    const now = Date.now();
    const id = newId('ver');
    const body = JSON.stringify({
      specversion: '1.0',
      id,
      seq: 0,
      type: verificationEventType,
      source: this.#context.bus.source,
      time: new Date(now).toISOString(),
      datacontenttype: 'application/json',
      data: { challenge, subscriptionId: subscription.id },
    });
    const { url, headers } = webhookRequest(config, id, body, now);
    const result = await this.#sender.post(url, headers, body, this.#timeout);
    let error: string | undefined;
    if (result.status === undefined) error = result.error ?? 'no answer';
    else if (result.status < 200 || result.status >= 300) error = `the endpoint answered ${result.status}`;
    else if (!echoesChallenge(result.body, challenge)) error = 'the endpoint answered without echoing the challenge';
    if (error !== undefined) {
      const failures = (this.#backoff.get(subscription.id)?.failures ?? 0) + 1;
      this.#backoff.set(subscription.id, { failures, nextAt: Date.now() + Math.min(sweepInterval * 2 ** (failures - 1), maxBackoff) });
      return { verified: false, error };
    }
    this.#backoff.delete(subscription.id);
    const current = await this.#context.subscriptions.get(subscription.id);
    // The URL may have changed while the challenge was out: then this answer proves nothing.
    if (!current || !this.#context.owns(current) || current.config.url !== config.url) {
      return { verified: false, error: 'the subscription changed during verification' };
    }
    const { unverified: _unverified, ...verified } = current.config;
    const updated = await this.#context.subscriptions.update(current.id, {
      config: { ...verified, verifiedAt: new Date().toISOString(), verifiedUrl: config.url },
      ...(current.status === 'pending' ? { status: 'active' as const } : {}),
    });
    if (updated && this.#context.owns(updated)) this.#context.refresh(updated);
    return { verified: true };
  }
}

/** Whether a subscription's endpoint still has to answer a challenge for its current URL. */
export function needsVerification(subscription: Subscription<StoredWebhookConfig>): boolean {
  return !endpointVerified(subscription.config) && subscription.status !== 'disabled';
}
