import { type HeraldEvent, newId, RepeatedFailure, StoreUnavailableError, type Subscription, type TransportContext, traceFields, UnavailableError } from '@herald/core';
import { attemptError, attemptOf, type PushResult, settledAttempt, storableText } from './attempt-outcome.js';
import { attemptSpan, endAttemptSpan } from './attempt-span.js';
import { CommitLoop } from './commit-loop.js';
import { Endpoint, type Queued, type Unsent } from './endpoint-state.js';
import { FailurePolicy } from './failure-policy.js';
import { recoverHold } from './hold-recovery.js';
import { type ClaimedDelivery, type ClaimRequest, createdDelivery, type Delivery, type DeliveryAttempt, type Lease, type NewDelivery, type Outbox, type OutboxBatchResult, type SettledAttempt } from './outbox.js';
import type { OutboxDispatcher, PreparedFanOut } from './outbox-dispatcher.js';
import { hasWrites, PendingWrites, type Writes } from './pending-writes.js';
import type { ResolvedPushOptions } from './push-options.js';
import type { HandedOver } from './replay-runner.js';
import type { PushConfig, PushMessage } from './push-transport.js';
import { writeApart } from './refused-writes.js';

/** Retries due later than this are left to the poll rather than given a timer. */
const timerHorizon = 60_000;
/** How long a subscription read from the store is trusted by the poll. */
const subscriptionTtl = 5_000;
/** Time left on a lease, beyond the timeout, for an attempt to be recorded before the lease ends. */
const leaseMargin = 1_000;
/** How long new events may wait in the log while every endpoint has as much work claimed as it takes. */
const maxFanOutWait = 1_000;
/** How often final deliveries past their retention are deleted. */
const pruneInterval = 600_000;

/** A replay waiting for this node's deliveries of an endpoint up to `seq` to be settled and committed. */
interface SettleWait {
  seq: number;
  /** How many of them are queued or in flight. */
  left: number;
  resolve: () => void;
}

interface EngineDependencies<TConfig extends PushConfig, TTarget> {
  /** The push transport's name: its fan-out position, and the `transport` of its subscriptions. */
  transport: string;
  context: TransportContext;
  outbox: Outbox;
  options: ResolvedPushOptions;
  dispatcher: OutboxDispatcher<TConfig>;
  /** Whether a subscription may be sent anything now (active, and whatever else the transport requires). */
  deliverable(subscription: Subscription<TConfig>): boolean;
  /** Whether a subscription is one of this transport's. */
  ours(subscription: Subscription): subscription is Subscription<TConfig>;
  /** What every send to one stored config shares; worked out once per config. */
  target(config: TConfig): TTarget;
  send(message: PushMessage<TConfig>, target: TTarget): Promise<PushResult>;
}

/**
 * This node's delivery worker for one push transport. One loop commits everything it writes in shared
 * transactions (settled attempts, fan-outs, claims); each endpoint has its own limit of deliveries in
 * flight, so a slow or dead endpoint holds only its own slots.
 */
export class DeliveryEngine<TConfig extends PushConfig, TTarget> {
  readonly worker = newId('wkr');
  readonly #transport: string;
  readonly #context: TransportContext;
  readonly #pollFailure: RepeatedFailure;
  readonly #commitFailure: RepeatedFailure;
  readonly #outbox: Outbox;
  readonly #options: ResolvedPushOptions;
  readonly #dispatcher: OutboxDispatcher<TConfig>;
  readonly #deliverable: (subscription: Subscription<TConfig>) => boolean;
  readonly #ours: (subscription: Subscription) => subscription is Subscription<TConfig>;
  readonly #target: (config: TConfig) => TTarget;
  readonly #send: (message: PushMessage<TConfig>, target: TTarget) => Promise<PushResult>;
  readonly #targets = new WeakMap<TConfig, TTarget>();
  readonly #endpoints = new Map<string, Endpoint<TConfig>>();
  /** Endpoints that are not idle (idle: no due delivery known, nothing to claim until a fan-out, a timer, the poll or a route says otherwise). */
  readonly #wanted = new Set<Endpoint<TConfig>>();
  readonly #settleWaits = new Map<Endpoint<TConfig>, SettleWait>();
  /** What runs once the next round has committed what was recorded before it: waits whose deliveries are all settled, purges. */
  #afterCommit: (() => void)[] = [];
  readonly #tasks = new Set<Promise<void>>();
  readonly #writes = new PendingWrites();
  readonly #loop: CommitLoop;
  readonly #failures: FailurePolicy;
  #stopping = false;
  #pollTimer?: NodeJS.Timeout;
  #stopRemovals?: () => void;
  #pruneTimer?: NodeJS.Timeout;
  #polling = false;
  #fannedOutAt = 0;

  constructor(dependencies: EngineDependencies<TConfig, TTarget>) {
    this.#transport = dependencies.transport;
    this.#context = dependencies.context;
    this.#pollFailure = new RepeatedFailure(this.#context.logger, 'warn', 'polling the outbox failed');
    this.#commitFailure = new RepeatedFailure(this.#context.logger, 'error', 'the outbox could not commit; retrying every second');
    this.#outbox = dependencies.outbox;
    this.#options = dependencies.options;
    this.#dispatcher = dependencies.dispatcher;
    this.#deliverable = dependencies.deliverable;
    this.#ours = dependencies.ours;
    this.#target = dependencies.target;
    this.#send = dependencies.send;
    this.#loop = new CommitLoop(
      () => this.#cycle(),
      (error) => this.#context.logger.error({ err: error }, 'the delivery worker failed; retrying'),
    );
    this.#failures = new FailurePolicy({
      disableAfter: this.#options.disableAfter,
      failingSince: (id) => this.#outbox.failingSince(id),
      disable: (id, reason) => this.#disable(id, reason),
    });
  }

  start(): void {
    this.#context.metrics?.backlog(() => this.#outbox.backlog(this.#transport), 'shared');
    this.#context.metrics?.backlog(() => this.#unstored(), 'node');
    this.#pollTimer = setInterval(() => void this.#poll(), this.#options.pollInterval);
    this.#pollTimer.unref();
    this.#pruneTimer = setInterval(() => void this.#prune(), pruneInterval);
    this.#pruneTimer.unref();
    this.#stopRemovals = this.#context.subscriptions.onRemoved((id) => this.#removed(id));
    void this.#poll();
  }

  /**
   * Stops claiming, gives back the claims not yet started, lets attempts in flight finish (each
   * bounded by the timeout) and records them.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#stopRemovals?.();
    clearInterval(this.#pollTimer);
    clearInterval(this.#pruneTimer);
    this.#loop.cancelTimers();
    for (const endpoint of this.#endpoints.values()) endpoint.sleep();
    await this.#loop.idle();
    const unstarted = [...this.#endpoints.values()].flatMap((endpoint) => endpoint.queue.splice(0));
    if (unstarted.length > 0) await this.#release(unstarted);
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    this.#loop.now();
    await this.#loop.idle();
    this.#loop.cancelTimers();
    for (const wait of this.#settleWaits.values()) wait.resolve();
    this.#settleWaits.clear();
  }

  /** New events are in the log. */
  eventsArrived(): void {
    this.#loop.now();
  }

  /** A subscription may have due deliveries (a route created or revived some). */
  wake(subscription: Subscription<TConfig>): void {
    const endpoint = this.#endpoint(subscription.id);
    endpoint.refresh(subscription, Date.now());
    this.#setIdle(endpoint, false);
    this.#loop.now();
  }

  /** Takes what changed of a subscription, e.g. its secret. */
  refresh(subscription: Subscription<TConfig>): void {
    this.#endpoints.get(subscription.id)?.refresh(subscription, Date.now());
  }

  /**
   * Sends `event` (a test event, in no log) to `subscription` once, now, with `send` as a delivery is sent:
   * its target, its span, the transport's guards and timeout. Records nothing: the attempt is returned, not
   * stored, and neither `onAttempt`, the metrics nor the failure policy hear of it.
   */
  async test(subscription: Subscription<TConfig>, event: HeraldEvent): Promise<DeliveryAttempt> {
    if (this.#stopping) throw new UnavailableError('The server is stopping');
    const now = Date.now();
    const delivery: Delivery = {
      ...createdDelivery({ id: newId('dlv_test'), subscriptionId: subscription.id, eventSeq: event.seq, eventId: event.id, nextAttemptAt: now }, now),
      attempts: 1,
    };
    const message = { event, body: JSON.stringify(event), subscription, delivery, test: true };
    const span = attemptSpan(this.#transport, message);
    const sending = (async () => {
      const startedAt = Date.now();
      let result: PushResult;
      try {
        result = await this.#send({ ...message, trace: traceFields(span) }, this.#targetOf(subscription.config));
      } catch (error) {
        result = failure(error);
      }
      endAttemptSpan(span, result);
      const attempt = attemptOf(delivery, startedAt, Date.now() - startedAt, result);
      if (!result.delivered) attempt.error = attemptError(result);
      return attempt;
    })();
    // The engine stops once it ends, as it does for deliveries.
    const task = sending.then(
      () => {},
      () => {},
    );
    this.#tasks.add(task);
    void task.finally(() => this.#tasks.delete(task));
    return sending;
  }

  /**
   * How many of a replay's deliveries to `subscription` this node would send at once (as many as it claims
   * ahead for the endpoint), and the lease to hold them under; undefined when it takes none that way: an
   * ordered or rate-limited endpoint, one that may be sent nothing now, or one that may have due
   * deliveries in the store (a replay's earlier batch among them, to be sent first). The replay stores
   * those for any worker to claim, oldest first.
   */
  replayRoom(subscription: Subscription<TConfig>, now: number): { lease: Lease; limit: number } | undefined {
    const { ordered, rateLimit } = subscription.config;
    if (this.#stopping || !this.#deliverable(subscription) || ordered || rateLimit !== undefined) return undefined;
    const endpoint = this.#endpoint(subscription.id);
    if (this.#wanted.has(endpoint)) return undefined;
    endpoint.refresh(subscription, now);
    const { concurrency } = this.#options;
    const limit = concurrency + endpoint.throughput.ahead(concurrency) - endpoint.busy;
    return limit > 0 ? { lease: { worker: this.worker, now, until: now + this.#options.lease }, limit } : undefined;
  }

  /**
   * Sends the deliveries a replay made already claimed, under a lease of {@link replayRoom}; `hold`, the
   * replay hold of those `startsRound`, is dropped once they all settled or went back.
   */
  takeReplayed(subscription: Subscription<TConfig>, claimed: readonly HandedOver[], hold: string | undefined): void {
    const endpoint = this.#endpoint(subscription.id);
    const queued = claimed.map(({ delivery, event, startsRound }): Queued<TConfig> => ({
      delivery,
      event,
      body: JSON.stringify(event),
      subscription,
      ...(startsRound ? { startsRound, ...(hold ? { hold } : {}) } : {}),
    }));
    if (hold) this.#writes.held(hold, queued.filter((item) => item.startsRound).length);
    if (this.#stopping) {
      void this.#release(queued);
      return;
    }
    endpoint.queue.push(...queued);
    this.#pump(endpoint);
  }

  /**
   * Resolves once this node's queued and in-flight deliveries to `subscriptionId` for events up to `seq`
   * have been attempted and their attempts committed (at once when it has none), or the engine stops: when
   * a replay waiting for them should look at the store again. A hint: deliveries claimed later, or given
   * back, are not waited for. A new wait for the subscription resolves the one before.
   */
  settledUpTo(subscriptionId: string, seq: number): Promise<void> {
    const endpoint = this.#endpoints.get(subscriptionId);
    if (!endpoint || this.#stopping) return Promise.resolve();
    this.#settleWaits.get(endpoint)?.resolve();
    let left = 0;
    for (const _ of unsettled(endpoint, seq)) left += 1;
    return new Promise((resolve) => {
      const wait: SettleWait = {
        seq,
        left,
        resolve: () => {
          if (this.#settleWaits.get(endpoint) === wait) this.#settleWaits.delete(endpoint);
          resolve();
        },
      };
      this.#settleWaits.set(endpoint, wait);
      if (left === 0) this.#settleWaitDone(endpoint, wait);
    });
  }

  /**
   * Whether this node has, queued or in flight, deliveries to `subscriptionId` for events up to `seq` that a
   * replay handed over without writing their rows: the outbox does not show them pending.
   */
  holdsReplayed(subscriptionId: string, seq: number): boolean {
    const endpoint = this.#endpoints.get(subscriptionId);
    if (!endpoint) return false;
    for (const item of unsettled(endpoint, seq)) if (item.startsRound) return true;
    return false;
  }

  /**
   * This node's deliveries, queued or in flight, that the outbox does not count pending: a fan-out's, not
   * written yet, and those a replay handed over, whose rows are final until their attempt settles.
   */
  #unstored(): number {
    let count = 0;
    for (const endpoint of this.#endpoints.values()) {
      for (const item of unsettled(endpoint, Number.POSITIVE_INFINITY)) if (item.held || item.startsRound) count += 1;
    }
    return count;
  }

  #settleWaitDone(endpoint: Endpoint<TConfig>, wait: SettleWait): void {
    this.#settleWaits.delete(endpoint);
    this.#afterCommit.push(wait.resolve);
    this.#loop.now();
  }

  #endpoint(id: string): Endpoint<TConfig> {
    let endpoint = this.#endpoints.get(id);
    if (!endpoint) {
      const created = new Endpoint<TConfig>(id, Date.now(), () => {
        this.#setIdle(created, false);
        this.#loop.now();
      });
      this.#endpoints.set(id, created);
      endpoint = created;
    }
    return endpoint;
  }

  #setIdle(endpoint: Endpoint<TConfig>, idle: boolean): void {
    if (idle) this.#wanted.delete(endpoint);
    else this.#wanted.add(endpoint);
  }

  /** Commits settled attempts, the next fan-out and new claims together, until there is nothing left to do. */
  async #cycle(): Promise<void> {
    for (;;) {
      this.#loop.clearAgain();
      // Taken before the writes: the commit of this round writes every attempt they wait for.
      const afterCommit = this.#afterCommit;
      this.#afterCommit = [];
      try {
        if (!(await this.#round())) return;
      } finally {
        for (const run of afterCommit) run();
      }
    }
  }

  /** One commit of the {@link #cycle}; whether to go round again. */
  async #round(): Promise<boolean> {
    const now = Date.now();
    const room = this.#stopping ? 0 : this.#fanOutRoom(now);
    const prepared = room > 0 ? await this.#dispatcher.next(now, room) : undefined;
    if (prepared) {
      this.#fannedOutAt = now;
      for (const [id, subscription] of prepared.subscriptions) this.#endpoint(id).refresh(subscription, now);
    }
    const writes = this.#writes.take();
    const claim = this.#stopping ? [] : this.#claimRequests(prepared);
    const rest = prepared ? this.#claimInFanOut(prepared, claim) : claim;
    if (!prepared && rest.length === 0 && !hasWrites(writes)) return false;
    const lease = { worker: this.worker, now, until: now + this.#options.lease };
    const batch = { lease, ...(prepared ? { fanOut: prepared.fanOut } : {}), claim: rest };
    let result: OutboxBatchResult;
    let refused: { error: unknown } | undefined;
    try {
      result = await this.#outbox.commit({ ...batch, ...writes });
    } catch (error) {
      // Refused for something it writes rather than because the store is away: the rest goes ahead, the writes apart.
      if (error instanceof StoreUnavailableError || !hasWrites(writes)) return this.#commitFailed(writes, error);
      try {
        result = await this.#outbox.commit(batch);
      } catch (again) {
        return this.#commitFailed(writes, again);
      }
      refused = { error };
    }
    this.#commitFailure.succeeded();
    if (prepared) {
      this.#dispatcher.committed(result.position ?? prepared.fanOut.to);
      // Another node fanned these events out first: their deliveries are in the store, for any worker to claim.
      if (!result.fannedOut) for (const id of prepared.subscriptions.keys()) this.#setIdle(this.#endpoint(id), false);
    }
    const fromFanOut = prepared && result.hold ? heldFromFanOut(prepared, result.claimedInFanOut, lease, result.hold) : [];
    if (result.hold) this.#writes.held(result.hold, fromFanOut.length);
    this.#takeClaims(rest, result, fromFanOut, now);
    if (refused) await this.#writeApart(lease, writes, refused.error);
    return prepared !== undefined || this.#loop.again;
  }

  /** A round whose commit failed: its writes are written first by the next one, in a second. */
  #commitFailed(writes: Writes, error: unknown): false {
    this.#writes.restore(writes);
    this.#commitFailure.failed(error);
    this.#loop.retryLater();
    return false;
  }

  /**
   * Writes what a commit the store refused held one write at a time (see `writeApart`). The endpoints of
   * its attempts claim again: their claims went ahead before their attempts were written.
   */
  async #writeApart(lease: Lease, writes: Writes, error: unknown): Promise<void> {
    this.#context.logger.error({ err: error }, 'the store refused a commit; writing its attempts one at a time');
    const left = await writeApart((part) => this.#outbox.commit({ lease, ...part }), writes, this.#context.logger);
    if (left) {
      this.#writes.restore(left);
      this.#loop.retryLater();
      return;
    }
    for (const { attempt } of writes.settle) {
      const endpoint = this.#endpoints.get(attempt.subscriptionId);
      if (endpoint) this.#setIdle(endpoint, false);
    }
    this.#loop.now();
  }

  /**
   * How many events to fan out now, at most. While the endpoints this node knows have work claimed, new
   * events wait in the log (`maxFanOutWait` at most, in case a subscription made on another node has not
   * rung yet) and are fanned out as room frees, so that their deliveries are held by the fan-out and sent
   * at once, rather than stored now and claimed later.
   */
  #fanOutRoom(now: number): number {
    if (now - this.#fannedOutAt >= maxFanOutWait || this.#endpoints.size === 0) return Number.POSITIVE_INFINITY;
    const { concurrency } = this.#options;
    let room = 0;
    for (const endpoint of this.#endpoints.values()) room = Math.max(room, concurrency + endpoint.throughput.ahead(concurrency) - endpoint.busy);
    // An active subscription this node has no endpoint for yet (a new one) has all the room it wants.
    if (room < concurrency && this.#context.subscriptions.countActive(this.#transport) > this.#endpoints.size) return Number.POSITIVE_INFINITY;
    // Less than a round of deliveries: the endpoints are still well supplied, and a fan-out this small would cost a commit for little.
    return room < concurrency ? 0 : room;
  }

  /** What each endpoint wanted, or given deliveries by `prepared`, can take now. */
  #claimRequests(prepared: PreparedFanOut<TConfig> | undefined): ClaimRequest[] {
    const { concurrency } = this.#options;
    const requests: ClaimRequest[] = [];
    const endpoints = new Set(this.#wanted);
    if (prepared) for (const id of prepared.subscriptions.keys()) endpoints.add(this.#endpoint(id));
    for (const endpoint of endpoints) {
      const subscription = endpoint.subscription;
      if (!subscription || !this.#deliverable(subscription)) {
        this.#setIdle(endpoint, true);
        continue;
      }
      const { ordered, rateLimit } = subscription.config;
      const busy = endpoint.busy;
      // Unordered endpoints claim ahead, so that a free slot never waits for a commit and commits stay few.
      const limit = ordered ? (busy === 0 ? 1 : 0) : concurrency + endpoint.throughput.ahead(concurrency) - busy;
      if (limit > 0) requests.push({ subscriptionId: endpoint.id, limit, ...(ordered ? { ordered: true } : {}), ...(rateLimit !== undefined ? { rateLimit } : {}) });
    }
    return requests;
  }

  /**
   * Marks the fan-out's deliveries to unordered endpoints without a rate limit as claimed, oldest first, up
   * to what each endpoint asks for, and returns the claims left for deliveries in the outbox: those of the
   * endpoints that may have some (wanted ones, and those given more by the fan-out than they take now).
   * A rate-limited endpoint's deliveries are all claimed from the outbox, which keeps its tokens.
   */
  #claimInFanOut(prepared: PreparedFanOut<TConfig>, requests: readonly ClaimRequest[]): ClaimRequest[] {
    const inFanOut = (request: ClaimRequest) => !request.ordered && request.rateLimit === undefined;
    const left = new Map(requests.filter(inFanOut).map((request) => [request.subscriptionId, request.limit]));
    for (const delivery of prepared.fanOut.deliveries) {
      const limit = left.get(delivery.subscriptionId) ?? 0;
      if (limit === 0) {
        this.#setIdle(this.#endpoint(delivery.subscriptionId), false);
        continue;
      }
      delivery.claimed = true;
      left.set(delivery.subscriptionId, limit - 1);
    }
    return requests
      .filter((request) => this.#wanted.has(this.#endpoint(request.subscriptionId)))
      .map((request) => (inFanOut(request) ? { ...request, limit: left.get(request.subscriptionId) ?? 0 } : request))
      .filter((request) => request.limit > 0);
  }

  /**
   * Queues what the fan-out and the store claimed and sends what the endpoints have room for. An
   * endpoint that got less from the store than it asked for has nothing due left there, or no tokens
   * left for what is due until the time the store said: it idles, until then.
   */
  #takeClaims(
    requests: readonly ClaimRequest[],
    { claimed: fromStore, rateLimited }: Pick<OutboxBatchResult, 'claimed' | 'rateLimited'>,
    fromFanOut: readonly Queued<TConfig>[],
    now: number,
  ): void {
    const counts = new Map<string, number>();
    for (const { delivery } of fromStore) counts.set(delivery.subscriptionId, (counts.get(delivery.subscriptionId) ?? 0) + 1);
    for (const { subscriptionId, limit } of requests) {
      if ((counts.get(subscriptionId) ?? 0) >= limit) continue;
      const endpoint = this.#endpoint(subscriptionId);
      this.#setIdle(endpoint, true);
      const tokenAt = rateLimited?.get(subscriptionId);
      if (tokenAt !== undefined) this.#wakeAt(endpoint, tokenAt);
    }
    const release: Unsent[] = [];
    const deleted = new Set<Endpoint<TConfig>>();
    const supplied = new Set<Endpoint<TConfig>>();
    for (const item of fromFanOut) {
      const endpoint = this.#endpoint(item.delivery.subscriptionId);
      supplied.add(endpoint);
      endpoint.refresh(item.subscription, now);
      if (this.#stopping) release.push(item);
      else endpoint.queue.push(item);
    }
    for (const { delivery, event, body, subscription } of fromStore) {
      const endpoint = this.#endpoint(delivery.subscriptionId);
      supplied.add(endpoint);
      if (!subscription) {
        deleted.add(endpoint);
        release.push({ delivery });
      } else if (!this.#ours(subscription) || this.#stopping) {
        release.push({ delivery });
      } else {
        endpoint.refresh(subscription, now);
        if (event) endpoint.queue.push({ delivery, event, body: body ?? JSON.stringify(event), subscription });
        else this.#lost(endpoint, delivery, now);
      }
    }
    // Once per deleted subscription, and before pumping, so that its endpoint is not made again.
    for (const endpoint of deleted) this.#removed(endpoint.id);
    for (const endpoint of supplied) if (this.#endpoints.get(endpoint.id) === endpoint) this.#pump(endpoint);
    if (release.length > 0) void this.#release(release);
  }

  /**
   * Gives claimed deliveries back unsent: held ones are created pending by the next commit; those a replay
   * handed over unwritten are replayed into the outbox, for any worker to claim.
   */
  async #release(items: readonly Unsent[]): Promise<void> {
    const stored: string[] = [];
    const replayed: Unsent[] = [];
    for (const item of items) {
      if (item.held) this.#writes.unheld(item.held, item.hold);
      else if (item.startsRound) replayed.push(item);
      else stored.push(item.delivery.id);
    }
    if (stored.length + replayed.length < items.length) this.#loop.soon();
    if (stored.length > 0) {
      await this.#outbox
        .release(this.worker, stored)
        .catch((error: unknown) => this.#context.logger.warn({ err: error }, 'releasing claimed deliveries failed; their lease runs out'));
    }
    if (replayed.length > 0) {
      try {
        const now = Date.now();
        await this.#outbox.replay(replayed.map((item) => unclaimed(item.delivery, now)), now);
        for (const item of replayed) this.#writes.givenBack(item.hold);
        this.#loop.soon();
      } catch (error) {
        this.#context.logger.warn({ err: error, count: replayed.length }, 'giving back replayed deliveries failed; their replay hold restarts them once its lease ends');
      }
    }
  }

  /** Sends queued deliveries while the endpoint has free slots, and only while it may be sent anything. */
  #pump(endpoint: Endpoint<TConfig>): void {
    const giveBack: Queued<TConfig>[] = [];
    const latest = endpoint.subscription;
    while (!this.#stopping && endpoint.queue.length > 0 && endpoint.inFlight < this.#options.concurrency) {
      const next = endpoint.queue.shift() as Queued<TConfig>;
      if (!this.#deliverable(next.subscription) || (latest && !this.#deliverable(latest))) giveBack.push(next);
      // An attempt must end well within its lease, or another worker could claim it and send it too.
      else if ((next.delivery.lockedUntil ?? 0) - Date.now() < this.#options.timeout + leaseMargin) giveBack.push(next);
      else this.#attempt(endpoint, next);
    }
    if (giveBack.length > 0) void this.#release(giveBack);
  }

  #attempt(endpoint: Endpoint<TConfig>, item: Queued<TConfig>): void {
    endpoint.sending.add(item);
    const startedAt = Date.now();
    const span = attemptSpan(this.#transport, item);
    const { event, body, subscription, delivery } = item;
    let sending: Promise<PushResult>;
    try {
      sending = this.#send({ event, body, subscription, delivery, trace: traceFields(span) }, this.#targetOf(subscription.config));
    } catch (error) {
      sending = Promise.reject(error);
    }
    const settle = (result: PushResult) => {
      endAttemptSpan(span, result);
      this.#attempted(endpoint, item, task, startedAt, result);
    };
    const task: Promise<void> = sending.then(settle, (error: unknown) => settle(failure(error)));
    this.#tasks.add(task);
  }

  #targetOf(config: TConfig): TTarget {
    let target = this.#targets.get(config);
    if (target === undefined) {
      target = this.#target(config);
      this.#targets.set(config, target);
    }
    return target;
  }

  /** Records an attempt and sends the endpoint's next delivery. */
  #attempted(endpoint: Endpoint<TConfig>, item: Queued<TConfig>, task: Promise<void>, startedAt: number, result: PushResult): void {
    const now = Date.now();
    try {
      const settled = settledAttempt(item.delivery, item.held, startedAt, now - startedAt, result, this.#options, now);
      if (item.startsRound) settled.startsRound = true;
      this.#record(endpoint, settled, result, item.hold, item.event);
    } catch (thrown) {
      this.#context.logger.error({ err: thrown }, 'recording an attempt failed');
    } finally {
      const { concurrency } = this.#options;
      endpoint.sending.delete(item);
      this.#tasks.delete(task);
      const wait = this.#settleWaits.get(endpoint);
      if (wait && item.delivery.eventSeq <= wait.seq && --wait.left <= 0) this.#settleWaitDone(endpoint, wait);
      endpoint.throughput.finished(now, concurrency);
      if (endpoint.removed) this.#forget(endpoint);
      else this.#pump(endpoint);
      const more = this.#wanted.has(endpoint) || !this.#dispatcher.caughtUp;
      if (item.subscription.config.ordered || (more && endpoint.queue.length <= endpoint.throughput.ahead(concurrency) / 2)) this.#loop.now();
      else this.#loop.soon();
    }
  }

  /** A claimed delivery whose event is no longer in the log: it fails, unsent. */
  #lost(endpoint: Endpoint<TConfig>, delivery: ClaimedDelivery['delivery'], now: number): void {
    const result: PushResult = { delivered: false, error: 'the event is no longer in the log', final: true };
    this.#record(endpoint, settledAttempt(delivery, undefined, now, 0, result, this.#options, now), result, undefined, undefined);
    this.#loop.soon();
  }

  /** What an attempt means: its record for the next commit, `onAttempt`, metrics, the next wake-up, the failure policy. */
  #record(endpoint: Endpoint<TConfig>, settled: SettledAttempt, result: PushResult, hold: string | undefined, event: HeraldEvent | undefined): void {
    const { attempt, status } = settled;
    this.#writes.settled(settled, hold);
    try {
      this.#options.onAttempt?.(attempt);
    } catch (error) {
      this.#context.logger.warn({ err: error }, 'onAttempt threw');
    }
    // Parsed, not cached (as `publishedAt` does): a delivery counts its event once, and a cache of every event sent costs more.
    if (status !== 'pending') this.#context.metrics?.delivered(status, event === undefined ? 0 : Date.now() - Date.parse(event.time));
    if (status === 'delivered') {
      this.#failures.delivered(endpoint.failure);
      return;
    }
    if (attempt.nextAttemptAt !== undefined) this.#wakeAt(endpoint, attempt.nextAttemptAt);
    const checked =
      result.disable !== undefined
        ? this.#failures.disable(endpoint.id, endpoint.failure, storableText(result.disable))
        : this.#failures.failed(endpoint.id, endpoint.failure, attempt.startedAt);
    checked.catch((error: unknown) => this.#context.logger.warn({ err: error, subscription: endpoint.id }, 'checking a failing endpoint failed'));
  }

  /** Disables a subscription and gives up its pending deliveries (for the failure policy). */
  async #disable(id: string, reason: string): Promise<void> {
    const endpoint = this.#endpoints.get(id);
    if (endpoint?.subscription?.status === 'disabled') return;
    try {
      const updated = await this.#context.subscriptions.update(id, { status: 'disabled', disabledReason: reason });
      if (endpoint) {
        if (updated && this.#ours(updated)) endpoint.subscription = updated;
        this.#setIdle(endpoint, true);
      }
      const abandoned = await this.#outbox.abandon(id, Date.now());
      this.#context.logger.warn({ subscription: id, reason, abandoned }, 'subscription disabled');
    } catch (error) {
      this.#context.logger.error({ err: error, subscription: id }, 'disabling a subscription failed');
    }
  }

  #wakeAt(endpoint: Endpoint<TConfig>, at: number): void {
    if (this.#stopping || at - Date.now() > timerHorizon) return;
    endpoint.wakeAt(at);
  }

  /** Finds due deliveries this node does not know about: retries, work of nodes that died, deliveries released. */
  async #poll(): Promise<void> {
    if (this.#polling || this.#stopping) return;
    this.#polling = true;
    try {
      const now = Date.now();
      for (const hold of await this.#outbox.expiredHolds(this.#transport, now)) {
        // Should this node be the one that held it, the deliveries it still counts are no longer its own.
        this.#writes.forget(hold.id);
        await recoverHold(this.#context, this.#outbox, hold, now);
      }
      for (const { id, worker, restarted } of (await this.#outbox.recoverReplayHolds?.(now)) ?? []) {
        this.#writes.forget(id);
        this.#context.logger.warn({ hold: id, worker, deliveries: restarted }, 'restarted the deliveries of an expired replay hold');
      }
      const due = await this.#outbox.due(this.#transport, now, 1000);
      await Promise.all(
        due.map(async (id) => {
          const endpoint = this.#endpoint(id);
          if (!endpoint.subscription || !this.#deliverable(endpoint.subscription) || now - endpoint.refreshedAt > subscriptionTtl) {
            const subscription = await this.#context.subscriptions.get(id);
            if (!subscription) return this.#removed(id);
            if (!this.#ours(subscription)) return;
            endpoint.refresh(subscription, now);
          }
          this.#setIdle(endpoint, false);
        }),
      );
      this.#pollFailure.succeeded();
      this.#loop.now();
    } catch (error) {
      this.#pollFailure.failed(error);
    } finally {
      this.#polling = false;
    }
  }

  /**
   * A subscription was deleted (on this node or another, told by the registry, or found gone by a claim or
   * the poll): what it has queued goes back unsent (its rows are purged), and its endpoint, which holds the
   * subscription, its secrets and its state, is forgotten once its attempts in flight end.
   */
  #removed(id: string): void {
    const endpoint = this.#endpoints.get(id);
    if (!endpoint) return;
    endpoint.removed = true;
    const queued = endpoint.queue.splice(0);
    if (queued.length > 0) void this.#release(queued);
    this.#forget(endpoint);
  }

  /**
   * Drops a deleted subscription's endpoint and, once its last attempts are committed (a held delivery's
   * makes its row), its deliveries.
   */
  #forget(endpoint: Endpoint<TConfig>): void {
    if (endpoint.busy > 0) return;
    endpoint.sleep();
    this.#setIdle(endpoint, true);
    this.#settleWaits.get(endpoint)?.resolve();
    this.#endpoints.delete(endpoint.id);
    this.#afterCommit.push(() => void this.#purge(endpoint.id));
    this.#loop.now();
  }

  async #purge(subscriptionId: string): Promise<void> {
    await this.#outbox
      .purge(subscriptionId)
      .catch((error: unknown) => this.#context.logger.warn({ err: error }, 'purging the deliveries of a deleted subscription failed'));
  }

  async #prune(): Promise<void> {
    try {
      await this.#outbox.prune(this.#transport, Date.now() - this.#options.retention);
    } catch (error) {
      this.#context.logger.warn({ err: error }, 'pruning final deliveries failed');
    }
  }
}

/** The deliveries of an endpoint for events up to `seq` that are queued or in flight. */
function* unsettled<TConfig extends PushConfig>(endpoint: Endpoint<TConfig>, seq: number): Generator<Queued<TConfig>> {
  for (const item of endpoint.queue) if (item.delivery.eventSeq <= seq) yield item;
  for (const item of endpoint.sending) if (item.delivery.eventSeq <= seq) yield item;
}

/** A claimed delivery as a new, unclaimed one, due at `now`. */
function unclaimed({ id, subscriptionId, eventSeq, eventId }: Delivery, now: number): NewDelivery {
  return { id, subscriptionId, eventSeq, eventId, nextAttemptAt: now };
}

/** A send that threw or rejected: a failed attempt, with its message. */
function failure(error: unknown): PushResult {
  return { delivered: false, error: error instanceof Error ? error.message : String(error) };
}

/** The deliveries the fan-out holds under `lease` (in `hold`), queued. */
function heldFromFanOut<TConfig extends PushConfig>(prepared: PreparedFanOut<TConfig>, ids: readonly string[], lease: Lease, hold: string): Queued<TConfig>[] {
  const held = new Set(ids);
  const events = new Map(prepared.events.map((event) => [event.seq, { event, body: '' }]));
  const queued: Queued<TConfig>[] = [];
  for (const delivery of prepared.fanOut.deliveries) {
    const subscription = prepared.subscriptions.get(delivery.subscriptionId);
    const fannedOut = events.get(delivery.eventSeq);
    if (!held.has(delivery.id) || !subscription || !fannedOut) continue;
    fannedOut.body ||= JSON.stringify(fannedOut.event);
    queued.push({ delivery: createdDelivery(delivery, lease.now, lease), event: fannedOut.event, body: fannedOut.body, subscription, held: delivery, hold });
  }
  return queued;
}
