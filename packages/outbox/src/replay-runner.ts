import { endSpan, type HeraldEvent, HeraldError, messagingAttributes, newId, passesFilter, readByPatterns, type Subscription, startSpan, type TransportContext } from '@herald/core';
import { type Context, context, type Span, SpanKind } from '@opentelemetry/api';
import { z } from 'zod';
import type { Lease, NewDelivery, Outbox, ReplayedDelivery } from './outbox.js';
import { seqBefore } from './seq-before.js';

/** A replay as the API shows it. */
export const replaySchema = z.object({
  id: z.string().describe('`rpl_…`'),
  subscriptionId: z.string(),
  status: z
    .enum(['running', 'completed', 'cancelled', 'failed'])
    .describe('`cancelled`: by `DELETE`, because the subscription was deleted, or because the server stopped; `failed`: see `error`'),
  after: z.number().int().nonnegative().describe('Events after this seq are replayed...'),
  since: z.iso
    .datetime()
    .optional()
    .describe('When the replay was asked from a time: `after` is the seq of the last event published before it'),
  until: z.number().int().nonnegative().describe('...up to this one: the end of the log when the replay began'),
  position: z.number().int().nonnegative().describe('Every matching event up to this seq has its delivery in the outbox'),
  replayed: z.number().int().nonnegative().describe('Deliveries made (or started again) so far'),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().nullable(),
  error: z.string().optional().describe('Why it was cancelled or failed'),
});

export type ReplayView = z.infer<typeof replaySchema>;

/** A replay of the subscription is still running: 409, with the replay. */
export class ReplayInProgressError extends HeraldError {
  override readonly name = 'ReplayInProgressError';
  constructor(readonly replay: ReplayView) {
    super(
      'replay-in-progress',
      409,
      `Replay ${replay.id} of this subscription is still running (at seq ${replay.position} of ${replay.until}); wait for it to finish, or cancel it with DELETE`,
      'Replay in progress',
    );
  }
  protected override extensions() {
    return { replay: this.replay };
  }
}

/** How replays run. */
export interface ReplayRunnerOptions {
  /** Events read, and deliveries made, per batch. @default 500 */
  batchSize?: number;
  /** Called after each batch, so that the delivery engine claims it. */
  wake(subscription: Subscription): void;
  /**
   * The delivery engine's way to take a batch's deliveries already claimed (when the outbox can:
   * `replayClaiming`), rather than claim them again: how many it takes now and under which lease, and
   * the deliveries claimed. @default every delivery is stored for the engine to claim
   */
  handOver?: ReplayHandOver;
}

/** See {@link ReplayRunnerOptions.handOver}. */
export interface ReplayHandOver {
  room(subscription: Subscription, now: number): { lease: Lease; limit: number } | undefined;
  /** `hold`: the replay hold of those `startsRound` ({@link ReplayClaim.hold}), for the engine to drop once they all settled or went back. */
  take(subscription: Subscription, claimed: readonly HandedOver[], hold: string | undefined): void;
  /**
   * Whether the engine still has, unsent or in flight, deliveries to the subscription for events up to `seq`
   * that were handed over `startsRound`: the outbox does not show those pending.
   */
  holds(subscriptionId: string, seq: number): boolean;
  /**
   * Resolves once the deliveries to the subscription for events up to `seq` that the engine holds have been
   * attempted and recorded: a replay waiting for them looks at the outbox again then, rather than at its next look.
   */
  settled?(subscriptionId: string, seq: number): Promise<void>;
}

/** A delivery a replay holds (see `ReplayClaim.claimed`), with its event. */
export interface HandedOver extends ReplayedDelivery {
  event: HeraldEvent;
}

interface Replay {
  view: ReplayView;
  /** Traces the replay from start to finish, with an event for each batch it makes. */
  span: Span;
  abort: AbortController;
  done: Promise<void>;
}

/**
 * While a replay waits for its batches to leave the outbox, it looks every `quickWait` ms for the
 * first `quickLooks` ms (a batch to a working endpoint goes in that time, and the next one is ready
 * before the endpoint runs dry), then every `slowWait` ms (the endpoint is failing, paused or unverified).
 */
const quickWait = 25;
const quickLooks = 2_000;
const slowWait = 1_000;
/** How long a finished replay stays visible. */
const finishedRetention = 3_600_000;

/**
 * Replays run in the background, one at a time per subscription: each turns the matching events of
 * the log into deliveries a batch at a time, and makes the next batch only once every batch before
 * the last has left the outbox, so a replay of millions of events never holds more than two batches
 * there and goes out through the same outbox and per-endpoint concurrency as live deliveries (what the
 * delivery engine has room for is created claimed and handed to it, a delivered event's row left as it was
 * until its attempt settles, under a replay hold; the rest it claims as any delivery). Replays live in this
 * process: a restart drops the one in flight (its batches already made stay, and should the process die, the
 * replay holds of what the engine held unsent bring those back once their lease ends).
 */
export class ReplayRunner {
  readonly #context: Pick<TransportContext, 'store' | 'bus' | 'catalog' | 'subscriptions' | 'logger'>;
  readonly #outbox: Outbox;
  readonly #batchSize: number;
  readonly #wake: (subscription: Subscription) => void;
  readonly #handOver: ReplayHandOver | undefined;
  /** The running or last replay of each subscription. */
  readonly #replays = new Map<string, Replay>();

  constructor(context: Pick<TransportContext, 'store' | 'bus' | 'catalog' | 'subscriptions' | 'logger'>, outbox: Outbox, options: ReplayRunnerOptions) {
    this.#context = context;
    this.#outbox = outbox;
    this.#batchSize = options.batchSize ?? 500;
    this.#wake = options.wake;
    this.#handOver = options.handOver;
  }

  /**
   * Starts replaying the events after `after`; throws {@link ReplayInProgressError} while one runs. The
   * replay is traced in a span whose parent is in `parent` (the active OpenTelemetry context, by default).
   */
  start(subscription: Subscription, after: number, parent: Context = context.active()): ReplayView {
    this.#refuseWhileRunning(subscription.id);
    return this.#start(subscription, after, this.#context.bus.latest, undefined, parent);
  }

  /**
   * Starts replaying the events published at or after `since` (ms since the epoch): from the seq before the
   * first of them (see {@link seqBefore}). One older than the log replays all of it; one in the future, nothing.
   */
  async startSince(subscription: Subscription, since: number, parent: Context = context.active()): Promise<ReplayView> {
    this.#refuseWhileRunning(subscription.id);
    const until = this.#context.bus.latest;
    const after = await seqBefore(this.#context.store, since, until);
    this.#refuseWhileRunning(subscription.id);
    return this.#start(subscription, after, until, new Date(since).toISOString(), parent);
  }

  #refuseWhileRunning(subscriptionId: string): void {
    this.#forgetFinished(Date.now());
    const running = this.#running(subscriptionId);
    if (running) throw new ReplayInProgressError({ ...running.view });
  }

  #start(subscription: Subscription, after: number, until: number, since: string | undefined, parent: Context): ReplayView {
    const view: ReplayView = {
      id: newId('rpl'),
      subscriptionId: subscription.id,
      status: 'running',
      after,
      ...(since !== undefined ? { since } : {}),
      until,
      position: Math.min(after, until),
      replayed: 0,
      startedAt: new Date().toISOString(),
      finishedAt: null,
    };
    const abort = new AbortController();
    const span = startSpan('replay', SpanKind.INTERNAL, parent, () => ({
      ...messagingAttributes('replay'),
      'herald.subscription.id': subscription.id,
      'herald.replay.id': view.id,
      'herald.replay.after': after,
      'herald.replay.until': until,
    }));
    const replay: Replay = { view, span, abort, done: Promise.resolve() };
    replay.done = this.#run(replay);
    this.#replays.set(subscription.id, replay);
    return { ...view };
  }

  /** The running or last replay of a subscription. */
  get(subscriptionId: string): ReplayView | undefined {
    this.#forgetFinished(Date.now());
    const replay = this.#replays.get(subscriptionId);
    return replay && { ...replay.view };
  }

  /** Cancels the running replay of a subscription; undefined when none runs. */
  async cancel(subscriptionId: string): Promise<ReplayView | undefined> {
    const running = this.#running(subscriptionId);
    if (!running) return undefined;
    running.abort.abort('cancelled by request');
    await running.done;
    return { ...running.view };
  }

  /** Cancels every running replay and waits for them to end. */
  async stop(): Promise<void> {
    const running = [...this.#replays.values()].filter((replay) => replay.view.status === 'running');
    for (const replay of running) replay.abort.abort('the server stopped');
    await Promise.all(running.map((replay) => replay.done));
  }

  #running(subscriptionId: string): Replay | undefined {
    const replay = this.#replays.get(subscriptionId);
    return replay?.view.status === 'running' ? replay : undefined;
  }

  #forgetFinished(now: number): void {
    for (const [id, { view }] of this.#replays) {
      if (view.finishedAt !== null && now - Date.parse(view.finishedAt) > finishedRetention) this.#replays.delete(id);
    }
  }

  async #run({ view, span, abort }: Replay): Promise<void> {
    const { store, catalog, subscriptions, logger } = this.#context;
    // The end of the batch before the last: once nothing of this replay up to it is pending, the next batch is made.
    let drainedUpTo = view.after;
    let lastBatchEnd = view.after;
    try {
      while (view.position < view.until) {
        await this.#drained(view, drainedUpTo, abort.signal);
        // The subscription as it is now: its types, its consumer, and whether it still exists.
        const subscription = await subscriptions.get(view.subscriptionId);
        if (!subscription) return this.#finish(view, 'cancelled', 'the subscription was deleted');
        const events = (
          await readByPatterns(store, catalog, { after: view.position, limit: this.#batchSize, patterns: subscription.types, visibleTo: subscription.consumer })
        ).filter((event) => event.seq <= view.until);
        if (abort.signal.aborted) break;
        const taken = events.filter((event) => passesFilter(subscription.filter, event));
        if (taken.length > 0) {
          const { replayed, handedOver } = await this.#replayBatch(subscription, taken);
          view.replayed += replayed;
          span.addEvent('batch', { 'herald.replay.position': (events.at(-1) as { seq: number }).seq, 'herald.replay.replayed': replayed });
          // The engine has every delivery handed over already: waking it would only have it look for more in the store.
          if (handedOver < replayed) this.#wake(subscription);
        }
        drainedUpTo = lastBatchEnd;
        view.position = events.length < this.#batchSize ? view.until : (events.at(-1) as { seq: number }).seq;
        lastBatchEnd = view.position;
      }
      if (abort.signal.aborted) return this.#finish(view, 'cancelled', String(abort.signal.reason));
      this.#finish(view, 'completed');
    } catch (error) {
      if (abort.signal.aborted) return this.#finish(view, 'cancelled', String(abort.signal.reason));
      logger.error({ err: error, subscription: view.subscriptionId, replay: view.id }, 'a replay failed');
      this.#finish(view, 'failed', `the log or the outbox could not be read; replay again with after=${view.position}`);
    } finally {
      span.setAttributes({ 'herald.replay.status': view.status, 'herald.replay.replayed': view.replayed });
      endSpan(span, view.status === 'failed' ? view.error : undefined);
    }
  }

  /**
   * Makes the deliveries of `events`: those the delivery engine has room for already claimed and handed to
   * it (so that it need not claim them again), the others stored for it to claim. Returns how many, and how
   * many of them were handed over.
   */
  async #replayBatch(subscription: Subscription, events: readonly HeraldEvent[]): Promise<{ replayed: number; handedOver: number }> {
    const now = Date.now();
    const room = this.#outbox.replayClaiming ? this.#handOver?.room(subscription, now) : undefined;
    const deliveries: NewDelivery[] = events.map((event, i) => ({
      id: newId('dlv'),
      subscriptionId: subscription.id,
      eventSeq: event.seq,
      eventId: event.id,
      nextAttemptAt: now,
      ...(room && i < room.limit ? { claimed: true } : {}),
    }));
    if (!room || !this.#outbox.replayClaiming || !this.#handOver) return { replayed: await this.#outbox.replay(deliveries, now), handedOver: 0 };
    const { replayed, claimed, hold } = await this.#outbox.replayClaiming(deliveries, room.lease);
    const bySeq = new Map(events.map((event) => [event.seq, event]));
    const handed = claimed.flatMap((held): HandedOver[] => {
      const event = bySeq.get(held.delivery.eventSeq);
      return event ? [{ ...held, event }] : [];
    });
    this.#handOver.take(subscription, handed, hold);
    return { replayed, handedOver: handed.length };
  }

  /**
   * Resolves once no delivery of this replay for an event up to `seq` is pending (each is final) or held by
   * the engine (unsent or in flight); rejects when aborted.
   */
  async #drained(view: ReplayView, seq: number, signal: AbortSignal): Promise<void> {
    const since = Date.now();
    for (;;) {
      signal.throwIfAborted();
      if (seq <= view.after) return;
      if (!this.#handOver?.holds(view.subscriptionId, seq)) {
        const [newest] = await this.#outbox.list(view.subscriptionId, { status: 'pending', before: seq + 1, limit: 1 });
        // Pending deliveries of events before the replay's range are not its own: they do not hold it back.
        if (newest === undefined || newest.eventSeq <= view.after) return;
      }
      await wakeOrSleep(this.#handOver?.settled?.(view.subscriptionId, seq), Date.now() - since < quickLooks ? quickWait : slowWait, signal);
    }
  }

  #finish(view: ReplayView, status: ReplayView['status'], error?: string): void {
    view.status = status;
    view.finishedAt = new Date().toISOString();
    if (error !== undefined) view.error = error;
  }
}

/** Resolves when `wake` does or after `ms`, whichever comes first; rejects when `signal` aborts. */
function wakeOrSleep(wake: Promise<void> | undefined, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', aborted);
      resolve();
    };
    const aborted = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', aborted, { once: true });
    wake?.then(done, done);
  });
}
