import { endSpan, type HeraldEvent, HeraldError, messagingAttributes, newId, passesFilter, readByPatterns, StoreUnavailableError, type Subscription, startSpan, type TransportContext } from '@herald/core';
import { type Context, context, type Span, SpanKind } from '@opentelemetry/api';
import { MemoryReplayRecords } from './memory-replay-records.js';
import type { Lease, NewDelivery, Outbox, ReplayedDelivery, ReplayRecords } from './outbox.js';
import type { ReplayView } from './replay-view.js';
import { seqBefore } from './seq-before.js';

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
  /** The push transport whose subscriptions' replays this runner runs, and takes over. */
  transport: string;
  /** Who runs them: the delivery engine's worker id. */
  worker: string;
  /** How long a replay is held under its worker's lease, in ms; the worker renews it as the replay goes, and another takes it over once it ends. */
  lease: number;
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
  /** When to renew its lease next, while it waits (ms since the epoch). */
  renewAt: number;
}

/**
 * While a replay waits for its batches to leave the outbox, it looks every `quickWait` ms for the
 * first `quickLooks` ms (a batch to a working endpoint goes in that time, and the next one is ready
 * before the endpoint runs dry), then every `slowWait` ms (the endpoint is failing, paused or unverified).
 */
const quickWait = 25;
const quickLooks = 2_000;
const slowWait = 1_000;
/** How long a replay waits, when the store is unavailable, before it tries again. */
const storeWait = 1_000;

/** Why a replay stops running here without finishing: its node stops, and hands it over. */
const handedOver = new Error('the server stopped; another node goes on with the replay');
/** Why a replay stops running here without finishing: it no longer runs under this worker (cancelled on another node, or taken over). */
const superseded = new Error('the replay no longer runs here');

/**
 * Replays run in the background, one at a time per subscription across the nodes: each turns the matching
 * events of the log into deliveries a batch at a time, and makes the next batch only once every batch before
 * the last has left the outbox, so a replay of millions of events never holds more than two batches
 * there and goes out through the same outbox and per-endpoint concurrency as live deliveries (what the
 * delivery engine has room for is created claimed and handed to it, a delivered event's row left as it was
 * until its attempt settles, under a replay hold; the rest it claims as any delivery). The outbox's
 * {@link ReplayRecords} show each replay to every node, which may cancel it; a replay's node holds it under
 * a lease it renews as it goes, and hands it over when it stops. When that lease ends (its node stopped or
 * died), a node's next look takes it over and goes on from its `position`.
 */
export class ReplayRunner {
  readonly #context: Pick<TransportContext, 'store' | 'bus' | 'catalog' | 'subscriptions' | 'logger'>;
  readonly #outbox: Outbox;
  readonly #records: ReplayRecords;
  readonly #options: ReplayRunnerOptions & { batchSize: number };
  /** The replays running on this node, by subscription. */
  readonly #running = new Map<string, Replay>();
  readonly #looks: NodeJS.Timeout;

  constructor(context: Pick<TransportContext, 'store' | 'bus' | 'catalog' | 'subscriptions' | 'logger'>, outbox: Outbox, options: ReplayRunnerOptions) {
    this.#context = context;
    this.#outbox = outbox;
    this.#records = outbox.replays ?? new MemoryReplayRecords();
    this.#options = { ...options, batchSize: options.batchSize ?? 500 };
    this.#looks = setInterval(() => void this.#takeOver(), Math.min(5_000, options.lease / 2));
    this.#looks.unref();
  }

  /**
   * Starts replaying the events after `after`; throws {@link ReplayInProgressError} while one runs. The
   * replay is traced in a span whose parent is in `parent` (the active OpenTelemetry context, by default).
   */
  start(subscription: Subscription, after: number, parent: Context = context.active()): Promise<ReplayView> {
    return this.#start(subscription, after, this.#context.bus.latest, undefined, parent);
  }

  /**
   * Starts replaying the events published at or after `since` (ms since the epoch): from the seq before the
   * first of them (see {@link seqBefore}). One older than the log replays all of it; one in the future, nothing.
   */
  async startSince(subscription: Subscription, since: number, parent: Context = context.active()): Promise<ReplayView> {
    // Refused before the log is searched, and by the start itself should another begin meanwhile.
    const latest = await this.#records.latest(subscription.id);
    if (latest?.status === 'running') throw new ReplayInProgressError(latest);
    const until = this.#context.bus.latest;
    const after = await seqBefore(this.#context.store, since, until);
    return this.#start(subscription, after, until, new Date(since).toISOString(), parent);
  }

  async #start(subscription: Subscription, after: number, until: number, since: string | undefined, parent: Context): Promise<ReplayView> {
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
    const running = await this.#records.begin(view, this.#lease());
    if (running) throw new ReplayInProgressError(running);
    const replay = this.#run(view, parent, false);
    // Nothing to replay: it is answered completed, and recorded so before the answer.
    if (view.position >= view.until) await replay.done;
    return { ...view };
  }

  /** The running or last replay of a subscription, on any node. */
  async get(subscriptionId: string): Promise<ReplayView | undefined> {
    return this.#records.latest(subscriptionId);
  }

  /** Cancels the running replay of a subscription, on whichever node runs it; undefined when none runs. */
  async cancel(subscriptionId: string): Promise<ReplayView | undefined> {
    const reason = 'cancelled by request';
    const here = this.#running.get(subscriptionId);
    if (!here) return this.#records.cancel(subscriptionId, reason, Date.now());
    here.abort.abort(reason);
    await here.done;
    return { ...here.view };
  }

  /** Stops the replays running here and waits for them to end: each is handed over, for another node (or this one, started again) to go on with. */
  async stop(): Promise<void> {
    clearInterval(this.#looks);
    const running = [...this.#running.values()];
    for (const replay of running) replay.abort.abort(handedOver);
    await Promise.all(running.map((replay) => replay.done));
  }

  /** How often a running replay records its progress and renews its lease, while it waits for its batches to leave. */
  get #renewEvery(): number {
    return Math.min(2_000, this.#options.lease / 3);
  }

  #lease(now = Date.now()): Lease {
    return { worker: this.#options.worker, now, until: now + this.#options.lease };
  }

  /** Goes on with the replays whose lease ended: their node stopped or died. */
  async #takeOver(): Promise<void> {
    try {
      for (const view of await this.#records.takeOver(this.#options.transport, this.#lease())) {
        // Its own, whose lease ran out while this node was too busy to renew it: it runs here still, and holds it again.
        if (this.#running.has(view.subscriptionId)) continue;
        this.#context.logger.warn({ subscription: view.subscriptionId, replay: view.id, position: view.position }, 'took over a replay whose lease ended');
        this.#run(view, context.active(), true);
      }
    } catch (error) {
      this.#context.logger.warn({ err: error }, 'looking for replays to take over failed');
    }
  }

  /** Runs `view` here, from its start or, `resumed`, from its position, where the batches before it may still be in the outbox. */
  #run(view: ReplayView, parent: Context, resumed: boolean): Replay {
    const span = startSpan('replay', SpanKind.INTERNAL, parent, () => ({
      ...messagingAttributes('replay'),
      'herald.subscription.id': view.subscriptionId,
      'herald.replay.id': view.id,
      'herald.replay.after': view.after,
      'herald.replay.until': view.until,
      ...(resumed ? { 'herald.replay.resumed_at': view.position } : {}),
    }));
    const replay: Replay = { view, span, abort: new AbortController(), done: Promise.resolve(), renewAt: Date.now() + this.#renewEvery };
    this.#running.set(view.subscriptionId, replay);
    replay.done = this.#batches(replay, resumed ? view.position : view.after).finally(() => this.#running.delete(view.subscriptionId));
    return replay;
  }

  /** Makes the replay's batches, from `drainedUpTo` on (waiting out a store unavailable a moment), and records how it ended. */
  async #batches(replay: Replay, drainedUpTo: number): Promise<void> {
    const { view, span, abort } = replay;
    const { store, catalog, subscriptions, logger } = this.#context;
    // The end of the batch before the last: once nothing of this replay up to it is pending, the next batch is made.
    let lastBatchEnd = drainedUpTo;
    let ended: Pick<ReplayView, 'status' | 'error'> | undefined;
    try {
      while (view.position < view.until) {
        try {
          await this.#drained(replay, drainedUpTo);
          // Cancelled on another node while it waited: no further batch.
          await this.#renew(replay);
          // The subscription as it is now: its types, its consumer, and whether it still exists.
          const subscription = await subscriptions.get(view.subscriptionId);
          if (!subscription) {
            ended = { status: 'cancelled', error: 'the subscription was deleted' };
            break;
          }
          const events = (
            await readByPatterns(store, catalog, { after: view.position, limit: this.#options.batchSize, patterns: subscription.types, visibleTo: subscription.consumer })
          ).filter((event) => event.seq <= view.until);
          abort.signal.throwIfAborted();
          const taken = events.filter((event) => passesFilter(subscription.filter, event));
          if (taken.length > 0) {
            const { replayed, handedOver } = await this.#replayBatch(subscription, taken);
            view.replayed += replayed;
            span.addEvent('batch', { 'herald.replay.position': (events.at(-1) as { seq: number }).seq, 'herald.replay.replayed': replayed });
            // The engine has every delivery handed over already: waking it would only have it look for more in the store.
            if (handedOver < replayed) this.#options.wake(subscription);
          }
          drainedUpTo = lastBatchEnd;
          view.position = events.length < this.#options.batchSize ? view.until : (events.at(-1) as { seq: number }).seq;
          lastBatchEnd = view.position;
          if (view.position < view.until) await this.#renew(replay);
        } catch (error) {
          // The store is away a moment (a lost connection, a lock held too long): the replay waits, then goes on from where it is.
          if (!(error instanceof StoreUnavailableError) || abort.signal.aborted) throw error;
          logger.warn({ err: error, subscription: view.subscriptionId, replay: view.id, position: view.position }, 'a replay waits for the store; going on in 1 s');
          await wakeOrSleep(undefined, storeWait, abort.signal);
        }
      }
      ended ??= { status: 'completed' };
    } catch (error) {
      const reason: unknown = abort.signal.aborted ? abort.signal.reason : error;
      if (reason === handedOver) {
        // Its lease ends at once, for the next look of any node to go on with it (should the write fail, when the lease runs out).
        await this.#records.progress(view, { worker: this.#options.worker, now: Date.now(), until: 0 }).catch(() => {});
      } else if (abort.signal.aborted) {
        ended = { status: 'cancelled', error: String(reason) };
      } else if (reason !== superseded) {
        logger.error({ err: error, subscription: view.subscriptionId, replay: view.id }, 'a replay failed');
        ended = { status: 'failed', error: `the log or the outbox could not be read; replay again with after=${view.position}` };
      }
      // Superseded: whoever runs it now records it.
    }
    if (ended) await this.#finish(view, ended);
    span.setAttributes({ 'herald.replay.status': view.status, 'herald.replay.replayed': view.replayed });
    endSpan(span, view.status === 'failed' ? view.error : undefined);
  }

  /** Records how far the replay got and holds it for another lease; throws `superseded` when it no longer runs here. */
  async #renew(replay: Replay): Promise<void> {
    const now = Date.now();
    replay.renewAt = now + this.#renewEvery;
    if (!(await this.#records.progress(replay.view, this.#lease(now)))) throw superseded;
  }

  async #finish(view: ReplayView, { status, error }: Pick<ReplayView, 'status' | 'error'>): Promise<void> {
    view.status = status;
    view.finishedAt = new Date().toISOString();
    if (error !== undefined) view.error = error;
    try {
      await this.#records.finish(view, this.#options.worker);
    } catch (recording) {
      this.#context.logger.error({ err: recording, subscription: view.subscriptionId, replay: view.id }, 'recording how a replay ended failed');
    }
  }

  /**
   * Makes the deliveries of `events`: those the delivery engine has room for already claimed and handed to
   * it (so that it need not claim them again), the others stored for it to claim. Returns how many, and how
   * many of them were handed over.
   */
  async #replayBatch(subscription: Subscription, events: readonly HeraldEvent[]): Promise<{ replayed: number; handedOver: number }> {
    const now = Date.now();
    const { handOver } = this.#options;
    const room = this.#outbox.replayClaiming ? handOver?.room(subscription, now) : undefined;
    const deliveries: NewDelivery[] = events.map((event, i) => ({
      id: newId('dlv'),
      subscriptionId: subscription.id,
      eventSeq: event.seq,
      eventId: event.id,
      nextAttemptAt: now,
      ...(room && i < room.limit ? { claimed: true } : {}),
    }));
    if (!room || !this.#outbox.replayClaiming || !handOver) return { replayed: await this.#outbox.replay(deliveries, now), handedOver: 0 };
    const { replayed, claimed, hold } = await this.#outbox.replayClaiming(deliveries, room.lease);
    const bySeq = new Map(events.map((event) => [event.seq, event]));
    const handed = claimed.flatMap((held): HandedOver[] => {
      const event = bySeq.get(held.delivery.eventSeq);
      return event ? [{ ...held, event }] : [];
    });
    handOver.take(subscription, handed, hold);
    return { replayed, handedOver: handed.length };
  }

  /**
   * Resolves once no delivery of this replay for an event up to `seq` is pending (each is final) or held by
   * the engine (unsent or in flight); rejects when aborted.
   */
  async #drained(replay: Replay, seq: number): Promise<void> {
    const { view, abort } = replay;
    const since = Date.now();
    for (;;) {
      abort.signal.throwIfAborted();
      if (seq <= view.after) return;
      if (Date.now() >= replay.renewAt) await this.#renew(replay);
      if (!this.#options.handOver?.holds(view.subscriptionId, seq)) {
        const [newest] = await this.#outbox.list(view.subscriptionId, { status: 'pending', before: seq + 1, limit: 1 });
        // Pending deliveries of events before the replay's range are not its own: they do not hold it back.
        if (newest === undefined || newest.eventSeq <= view.after) return;
      }
      await wakeOrSleep(this.#options.handOver?.settled?.(view.subscriptionId, seq), Date.now() - since < quickLooks ? quickWait : slowWait, abort.signal);
    }
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
