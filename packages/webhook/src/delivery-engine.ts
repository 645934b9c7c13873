import {
  type ClaimedDelivery,
  type ClaimRequest,
  createdDelivery,
  type DeliveryAttempt,
  type HeraldEvent,
  type Hold,
  type Lease,
  type NewDelivery,
  newId,
  type Outbox,
  type SettledAttempt,
  type Subscription,
  takesEvent,
  type TransportContext,
} from '@herald/core';
import { type Outcome, outcomeOf } from './delivery-outcome.js';
import type { HttpSender, SendResult } from './http-sender.js';
import type { OutboxDispatcher, PreparedFanOut } from './outbox-dispatcher.js';
import type { StoredWebhookConfig } from './webhook-config.js';
import type { ResolvedWebhookOptions } from './webhook-options.js';
import { webhookRequest } from './webhook-request.js';

/** Settles with nothing waiting on them are gathered this long, so that they share a commit. */
const settleDelay = 50;
/** Retries due later than this are left to the poll rather than given a timer. */
const timerHorizon = 60_000;
/** How long a subscription read from the store is trusted by the poll. */
const subscriptionTtl = 5_000;
/** How often an endpoint's throughput is measured, in ms: soon enough that a burst after a quiet spell is claimed ahead within its first rounds. */
const rateWindow = 50;
/** An unordered endpoint claims ahead about this much of its measured throughput, in seconds... */
const prefetchSeconds = 0.25;
/** ...but at least its concurrency and at most this many. */
const maxPrefetch = 1024;
/** Time left on a lease, beyond the timeout, for an attempt to be recorded before the lease ends. */
const leaseMargin = 1_000;
/** How long new events may wait in the log while every endpoint has as much work claimed as it takes. */
const maxFanOutWait = 1_000;
/** How often settled deliveries past their retention are deleted. */
const pruneInterval = 600_000;

/** One subscription's endpoint, as this node's worker sees it. */
interface Endpoint {
  id: string;
  subscription?: Subscription;
  refreshedAt: number;
  inFlight: number;
  /** Claimed and waiting for a free slot: sent as soon as one frees, without waiting for a commit. */
  queue: ClaimedWithSubscription[];
  timer?: NodeJS.Timeout;
  timerAt: number;
  /** Attempts finished per second, smoothed, and the current count. */
  rate: number;
  finished: number;
  finishedSince: number;
  /** Rate limit: a token bucket. */
  tokens: number;
  tokensAt: number;
  /** When its run of failures began: null when it is not failing, undefined when not known. */
  failingSince?: number | null;
  /** A disable of its subscription is under way. */
  disabling?: boolean;
}

/**
 * A claimed delivery; `held` (with its `hold`) when a fan-out gave it to this worker without storing it,
 * and then with its event's JSON, which the fan-out made once for the subscriptions it matched.
 */
type Claimed = ClaimedDelivery & { held?: NewDelivery; hold?: string; body?: string };
type ClaimedWithSubscription = Claimed & { subscription: Subscription };

/** An attempt made: what to record, and what it means. */
interface Attempted {
  settled: SettledAttempt;
  outcome: Outcome;
}

interface EngineDependencies {
  context: TransportContext;
  options: ResolvedWebhookOptions;
  sender: HttpSender;
  dispatcher: OutboxDispatcher;
  /** Whether a subscription may be sent anything now (active, and its endpoint verified when verification is on). */
  deliverable(subscription: Subscription): boolean;
}

/**
 * This node's webhook worker. One loop commits everything it writes in shared transactions (settled
 * attempts, fan-outs, claims); each endpoint has its own limit of requests in flight, so a slow or
 * dead endpoint holds only its own slots.
 */
export class DeliveryEngine {
  readonly worker = newId('wkr');
  readonly #context: TransportContext;
  readonly #outbox: Outbox;
  readonly #options: ResolvedWebhookOptions;
  readonly #sender: HttpSender;
  readonly #dispatcher: OutboxDispatcher;
  readonly #deliverable: (subscription: Subscription) => boolean;
  readonly #endpoints = new Map<string, Endpoint>();
  /** Endpoints that are not idle (idle: no due delivery known, nothing to claim until a fan-out, a timer, the poll or a route says otherwise). */
  readonly #wanted = new Set<Endpoint>();
  readonly #tasks = new Set<Promise<void>>();
  /** What the next commit writes besides its fan-out and claims. */
  #writes = noWrites();
  /** How many deliveries of each of this worker's holds have no row yet. */
  readonly #holds = new Map<string, number>();
  #cycling?: Promise<void>;
  #again = false;
  #stopping = false;
  #settleTimer?: NodeJS.Timeout;
  #retryTimer?: NodeJS.Timeout;
  #pollTimer?: NodeJS.Timeout;
  #pruneTimer?: NodeJS.Timeout;
  #polling = false;
  #fannedOutAt = 0;

  constructor({ context, options, sender, dispatcher, deliverable }: EngineDependencies) {
    this.#context = context;
    this.#outbox = context.store.outbox;
    this.#options = options;
    this.#sender = sender;
    this.#dispatcher = dispatcher;
    this.#deliverable = deliverable;
  }

  start(): void {
    this.#context.metrics?.backlog(() => this.#outbox.backlog());
    this.#pollTimer = setInterval(() => void this.#poll(), this.#options.pollInterval);
    this.#pollTimer.unref();
    this.#pruneTimer = setInterval(() => void this.#prune(), pruneInterval);
    this.#pruneTimer.unref();
    void this.#poll();
  }

  /**
   * Stops claiming, gives back the claims not yet started, lets attempts in flight finish (each
   * bounded by the timeout) and records them.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#pollTimer);
    clearInterval(this.#pruneTimer);
    clearTimeout(this.#settleTimer);
    clearTimeout(this.#retryTimer);
    for (const endpoint of this.#endpoints.values()) clearTimeout(endpoint.timer);
    while (this.#cycling) await this.#cycling;
    const unstarted = [...this.#endpoints.values()].flatMap((endpoint) => endpoint.queue.splice(0));
    if (unstarted.length > 0) await this.#release(unstarted);
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    this.#kick();
    while (this.#cycling) await this.#cycling;
    clearTimeout(this.#settleTimer);
  }

  /** New events are in the log. */
  ring(): void {
    this.#kick();
  }

  /** A subscription may have due deliveries (a route created or revived some). */
  wake(subscription: Subscription): void {
    const endpoint = this.#endpoint(subscription.id);
    endpoint.subscription = subscription;
    endpoint.refreshedAt = Date.now();
    this.#setIdle(endpoint, false);
    this.#kick();
  }

  /** Forgets what this node knows of a subscription, e.g. after its secret changed. */
  refresh(subscription: Subscription): void {
    const endpoint = this.#endpoints.get(subscription.id);
    if (endpoint) {
      endpoint.subscription = subscription;
      endpoint.refreshedAt = Date.now();
    }
  }

  #endpoint(id: string): Endpoint {
    let endpoint = this.#endpoints.get(id);
    if (!endpoint) {
      const now = Date.now();
      endpoint = { id, refreshedAt: 0, inFlight: 0, queue: [], timerAt: 0, rate: 0, finished: 0, finishedSince: now, tokens: Number.POSITIVE_INFINITY, tokensAt: 0 };
      this.#endpoints.set(id, endpoint);
    }
    return endpoint;
  }

  #setIdle(endpoint: Endpoint, idle: boolean): void {
    if (idle) this.#wanted.delete(endpoint);
    else this.#wanted.add(endpoint);
  }

  /**
   * Runs a cycle, or another one after the current. A cycle starts in the check phase of the event
   * loop: the store answers synchronously, so a cycle started at once would commit each answer that
   * arrives on its own, where waiting a phase lets every answer already received share one commit.
   */
  #kick(): void {
    if (this.#cycling) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#settleTimer);
    this.#settleTimer = undefined;
    this.#cycling = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#cycle())
      .catch((error: unknown) => this.#context.logger.error({ err: error }, 'the webhook worker failed; retrying'))
      .finally(() => {
        this.#cycling = undefined;
        if (this.#again) {
          this.#again = false;
          this.#kick();
        }
      });
  }

  #kickSoon(): void {
    if (this.#cycling) {
      this.#again = true;
      return;
    }
    this.#settleTimer ??= setTimeout(() => {
      this.#settleTimer = undefined;
      this.#kick();
    }, settleDelay);
  }

  /** Commits settled attempts, the next fan-out and new claims together, until there is nothing left to do. */
  async #cycle(): Promise<void> {
    for (;;) {
      this.#again = false;
      const now = Date.now();
      const room = this.#stopping ? 0 : this.#fanOutRoom(now);
      const prepared = room > 0 ? await this.#dispatcher.next(now, room) : undefined;
      if (prepared) {
        this.#fannedOutAt = now;
        for (const [id, subscription] of prepared.subscriptions) {
          const endpoint = this.#endpoint(id);
          endpoint.subscription = subscription;
          endpoint.refreshedAt = now;
        }
      }
      const writes = this.#writes;
      this.#writes = noWrites();
      const claim = this.#stopping ? [] : this.#claimRequests(now, prepared);
      const rest = prepared ? this.#claimInFanOut(prepared, claim) : claim;
      if (!prepared && rest.length === 0 && !hasWrites(writes)) return;
      const lease = { worker: this.worker, now, until: now + this.#options.lease };
      let result: Awaited<ReturnType<Outbox['commit']>>;
      try {
        result = await this.#outbox.commit({ lease, ...writes, ...(prepared ? { fanOut: prepared.fanOut } : {}), claim: rest });
      } catch (error) {
        // Written next time, before what has come since.
        this.#writes = joinWrites(writes, this.#writes);
        this.#context.logger.error({ err: error }, 'the webhook outbox could not commit; retrying in 1 s');
        this.#retryTimer ??= setTimeout(() => {
          this.#retryTimer = undefined;
          this.#kick();
        }, 1000);
        return;
      }
      if (prepared) {
        this.#dispatcher.committed(result.position ?? prepared.fanOut.to);
        // Another node fanned these events out first: their deliveries are in the store, for any worker to claim.
        if (!result.fannedOut) for (const id of prepared.subscriptions.keys()) this.#setIdle(this.#endpoint(id), false);
      }
      const fromFanOut = prepared && result.hold ? heldFromFanOut(prepared, result.claimedInFanOut, lease, result.hold) : [];
      if (result.hold) this.#holds.set(result.hold, fromFanOut.length);
      this.#takeClaims(rest, result.claimed, fromFanOut, now);
      if (!prepared && !this.#again) return;
    }
  }

  /**
   * How many events to fan out now, at most. While the endpoints this node knows have work claimed,
   * new events wait in the log (`maxFanOutWait` at most, in case a subscription made on another node has not rung yet) and are fanned out as room frees, so that their
   * deliveries are held by the fan-out and sent at once, rather than stored now and claimed later.
   */
  #fanOutRoom(now: number): number {
    if (now - this.#fannedOutAt >= maxFanOutWait || this.#endpoints.size === 0) return Number.POSITIVE_INFINITY;
    let room = 0;
    for (const endpoint of this.#endpoints.values()) {
      room = Math.max(room, this.#options.concurrency + this.#ahead(endpoint) - endpoint.inFlight - endpoint.queue.length);
    }
    // An active subscription this node has no endpoint for yet (a new one) has all the room it wants.
    if (room < this.#options.concurrency && this.#context.subscriptions.countActive(this.#dispatcher.transport) > this.#endpoints.size) return Number.POSITIVE_INFINITY;
    // Less than a round of requests: the endpoints are still well supplied, and a fan-out this small would cost a commit for little.
    return room < this.#options.concurrency ? 0 : room;
  }

  /** What each endpoint wanted, or given deliveries by `prepared`, can take now. */
  #claimRequests(now: number, prepared: PreparedFanOut | undefined): ClaimRequest[] {
    const requests: ClaimRequest[] = [];
    const endpoints = new Set(this.#wanted);
    if (prepared) for (const id of prepared.subscriptions.keys()) endpoints.add(this.#endpoint(id));
    for (const endpoint of endpoints) {
      const subscription = endpoint.subscription;
      if (!subscription || !this.#deliverable(subscription)) {
        this.#setIdle(endpoint, true);
        continue;
      }
      const config = subscription.config as StoredWebhookConfig;
      const busy = endpoint.inFlight + endpoint.queue.length;
      // Unordered endpoints claim ahead, so that a free slot never waits for a commit and commits stay few.
      let limit = config.ordered ? (busy === 0 ? 1 : 0) : this.#options.concurrency + this.#ahead(endpoint) - busy;
      if (limit > 0 && config.rateLimit !== undefined) {
        const rate = config.rateLimit;
        const capacity = Math.max(1, rate);
        endpoint.tokens = Math.min(capacity, endpoint.tokens + ((now - endpoint.tokensAt) * rate) / 1000);
        endpoint.tokensAt = now;
        limit = Math.min(limit, Math.floor(endpoint.tokens));
        if (limit === 0) this.#wakeAt(endpoint, now + Math.ceil(((1 - endpoint.tokens) * 1000) / rate));
      }
      if (limit > 0) requests.push({ subscriptionId: endpoint.id, limit, ...(config.ordered ? { ordered: true } : {}) });
    }
    return requests;
  }

  /**
   * Marks the fan-out's deliveries to unordered endpoints as claimed, oldest first, up to what each
   * endpoint asks for, and returns the claims left for deliveries already in the outbox: those of the
   * endpoints that may have some (wanted ones, and those given more by the fan-out than they take now).
   */
  #claimInFanOut(prepared: PreparedFanOut, requests: readonly ClaimRequest[]): ClaimRequest[] {
    const left = new Map(requests.filter((request) => !request.ordered).map((request) => [request.subscriptionId, request.limit]));
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
      .map((request) => (request.ordered ? request : { ...request, limit: left.get(request.subscriptionId) ?? 0 }))
      .filter((request) => request.limit > 0);
  }

  /** How many deliveries an unordered endpoint keeps claimed beyond those in flight. */
  #ahead(endpoint: Endpoint): number {
    return Math.min(maxPrefetch, Math.max(this.#options.concurrency, Math.round(endpoint.rate * prefetchSeconds)));
  }

  /**
   * Queues what the fan-out and the store claimed and sends what the endpoints have room for. An
   * endpoint that got less from the store than it asked for has nothing due left there: it idles.
   */
  #takeClaims(requests: readonly ClaimRequest[], fromStore: readonly Claimed[], fromFanOut: readonly Claimed[], now: number): void {
    const counts = new Map<string, number>();
    for (const { delivery } of fromStore) counts.set(delivery.subscriptionId, (counts.get(delivery.subscriptionId) ?? 0) + 1);
    for (const request of requests) {
      if ((counts.get(request.subscriptionId) ?? 0) < request.limit) this.#setIdle(this.#endpoint(request.subscriptionId), true);
    }
    const release: Claimed[] = [];
    const deleted = new Set<Endpoint>();
    const supplied = new Set<Endpoint>();
    for (const claimed of [fromFanOut, fromStore]) {
      for (const item of claimed) {
        const endpoint = this.#endpoint(item.delivery.subscriptionId);
        supplied.add(endpoint);
        if (Number.isFinite(endpoint.tokens)) endpoint.tokens -= 1;
        if (item.subscription) {
          endpoint.subscription = item.subscription;
          endpoint.refreshedAt = now;
        } else {
          deleted.add(endpoint);
        }
        if (this.#stopping || !item.subscription) release.push(item);
        else endpoint.queue.push(item as ClaimedWithSubscription);
      }
    }
    // Once per deleted subscription, and before pumping, so that its endpoint is not made again.
    for (const endpoint of deleted) void this.#forget(endpoint);
    for (const endpoint of supplied) if (this.#endpoints.get(endpoint.id) === endpoint) this.#pump(endpoint);
    if (release.length > 0) void this.#release(release);
  }

  /** Gives claimed deliveries back unsent: held ones are created pending by the next commit. */
  async #release(items: readonly Claimed[]): Promise<void> {
    const stored: string[] = [];
    for (const item of items) {
      if (item.held) {
        this.#writes.unhold.push(item.held);
        this.#recorded(item);
      } else {
        stored.push(item.delivery.id);
      }
    }
    if (this.#writes.unhold.length > 0) this.#kickSoon();
    if (stored.length === 0) return;
    await this.#outbox
      .release(this.worker, stored)
      .catch((error: unknown) => this.#context.logger.warn({ err: error }, 'releasing claimed deliveries failed; their lease runs out'));
  }

  /** A held delivery will have its row after the next commit: its hold is dropped with the last of them. */
  #recorded({ hold }: Claimed): void {
    if (hold === undefined) return;
    const left = (this.#holds.get(hold) ?? 1) - 1;
    if (left > 0) {
      this.#holds.set(hold, left);
      return;
    }
    this.#holds.delete(hold);
    this.#writes.dropHolds.push(hold);
  }

  /** Sends queued deliveries while the endpoint has free slots, and only while it may be sent anything. */
  #pump(endpoint: Endpoint): void {
    const giveBack: Claimed[] = [];
    const latest = endpoint.subscription;
    while (!this.#stopping && endpoint.queue.length > 0 && endpoint.inFlight < this.#options.concurrency) {
      const next = endpoint.queue.shift() as ClaimedWithSubscription;
      if (!this.#deliverable(next.subscription) || (latest && !this.#deliverable(latest))) giveBack.push(next);
      // An attempt must end well within its lease, or another worker could claim it and send it too.
      else if ((next.delivery.lockedUntil ?? 0) - Date.now() < this.#options.timeout + leaseMargin) giveBack.push(next);
      else this.#send(endpoint, next);
    }
    if (giveBack.length > 0) void this.#release(giveBack);
  }

  #send(endpoint: Endpoint, claimed: ClaimedWithSubscription): void {
    endpoint.inFlight += 1;
    const task: Promise<void> = this.#attempt(claimed).then(
      (attempted) => this.#attempted(endpoint, claimed, task, attempted),
      (error: unknown) => this.#attempted(endpoint, claimed, task, undefined, error),
    );
    this.#tasks.add(task);
  }

  /** Records an attempt (or its unexpected failure: then its lease runs out) and sends the endpoint's next delivery. */
  #attempted(endpoint: Endpoint, claimed: ClaimedWithSubscription, task: Promise<void>, attempted?: Attempted, error?: unknown): void {
    try {
      if (attempted) {
        this.#writes.settle.push(attempted.settled);
        this.#recorded(claimed);
        this.#afterAttempt(endpoint, attempted.settled.attempt, attempted.outcome, claimed.event?.time);
      } else {
        this.#context.logger.error({ err: error }, 'a webhook attempt failed unexpectedly; its lease runs out');
      }
    } catch (thrown) {
      this.#context.logger.error({ err: thrown }, 'recording a webhook attempt failed');
    } finally {
      endpoint.inFlight -= 1;
      this.#tasks.delete(task);
      this.#measure(endpoint);
      this.#pump(endpoint);
      const ordered = (claimed.subscription.config as StoredWebhookConfig).ordered;
      const more = this.#wanted.has(endpoint) || !this.#dispatcher.caughtUp;
      if (ordered || (more && endpoint.queue.length <= this.#ahead(endpoint) / 2)) this.#kick();
      else this.#kickSoon();
    }
  }

  #measure(endpoint: Endpoint): void {
    endpoint.finished += 1;
    const now = Date.now();
    const elapsed = now - endpoint.finishedSince;
    // The first estimate as soon as a round of requests has finished, so that a new endpoint is claimed ahead for at once.
    const firstRound = endpoint.rate === 0 && endpoint.finished >= this.#options.concurrency && elapsed > 0;
    if (elapsed >= rateWindow || firstRound) {
      endpoint.rate = endpoint.rate === 0 ? (endpoint.finished * 1000) / elapsed : 0.5 * endpoint.rate + (0.5 * endpoint.finished * 1000) / elapsed;
      endpoint.finished = 0;
      endpoint.finishedSince = now;
    }
  }

  async #attempt({ delivery, event, subscription, held, body: fannedOutBody }: ClaimedWithSubscription): Promise<Attempted> {
    const startedAt = Date.now();
    let result: SendResult;
    if (event) {
      const body = fannedOutBody ?? JSON.stringify(event);
      const { url, headers } = webhookRequest(subscription.config as StoredWebhookConfig, event.id, body, startedAt);
      result = await this.#sender.post(url, headers, body, this.#options.timeout);
    } else {
      result = { durationMs: 0, error: 'the event is no longer in the log' };
    }
    const outcome: Outcome = event
      ? outcomeOf(result, delivery.attempts, this.#options.retrySchedule, this.#options.jitter, Date.now())
      : { status: 'failed', error: 'the event is no longer in the log' };
    const attempt: DeliveryAttempt = {
      deliveryId: delivery.id,
      subscriptionId: delivery.subscriptionId,
      attempt: delivery.attempts,
      startedAt,
      durationMs: Math.round(result.durationMs),
      outcome: outcome.status === 'delivered' ? 'succeeded' : 'failed',
    };
    if (result.status !== undefined) attempt.responseStatus = result.status;
    if (result.body !== undefined) attempt.responseBody = result.body;
    if (outcome.error !== undefined) attempt.error = outcome.error;
    if (outcome.nextAttemptAt !== undefined) attempt.nextAttemptAt = outcome.nextAttemptAt;
    return { settled: held ? { attempt, status: outcome.status, held } : { attempt, status: outcome.status }, outcome };
  }

  #afterAttempt(endpoint: Endpoint, attempt: DeliveryAttempt, outcome: Outcome, eventTime: string | undefined): void {
    try {
      this.#options.onAttempt?.(attempt);
    } catch (error) {
      this.#context.logger.warn({ err: error }, 'onAttempt threw');
    }
    if (outcome.status !== 'pending') {
      this.#context.metrics?.delivered(outcome.status, eventTime === undefined ? 0 : Date.now() - Date.parse(eventTime));
    }
    if (outcome.status === 'delivered') {
      endpoint.failingSince = null;
      return;
    }
    if (outcome.nextAttemptAt !== undefined) this.#wakeAt(endpoint, outcome.nextAttemptAt);
    if (outcome.disable) void this.#disable(endpoint, outcome.disable);
    else void this.#checkFailing(endpoint, attempt.startedAt);
  }

  /** Disables a subscription whose attempts have all failed for `disableAfter`. */
  async #checkFailing(endpoint: Endpoint, failedAt: number): Promise<void> {
    try {
      const known = endpoint.failingSince !== undefined;
      if (!known) endpoint.failingSince = await this.#outbox.failingSince(endpoint.id);
      endpoint.failingSince ??= failedAt;
      if (failedAt - endpoint.failingSince < this.#options.disableAfter) return;
      // Another node may have delivered since: ask the store before disabling (unless it was just asked).
      const since = known ? await this.#outbox.failingSince(endpoint.id) : endpoint.failingSince;
      endpoint.failingSince = since ?? failedAt;
      if (since === undefined || failedAt - since < this.#options.disableAfter) return;
      const days = (this.#options.disableAfter / 86_400_000).toFixed(2).replace(/\.?0+$/, '');
      await this.#disable(endpoint, `every attempt failed for ${days} days`);
    } catch (error) {
      this.#context.logger.warn({ err: error, subscription: endpoint.id }, 'checking a failing endpoint failed');
    }
  }

  async #disable(endpoint: Endpoint, reason: string): Promise<void> {
    // The attempts still in flight fail too: the first to get here disables the subscription, once.
    if (endpoint.disabling || endpoint.subscription?.status === 'disabled') return;
    endpoint.disabling = true;
    try {
      const updated = await this.#context.subscriptions.update(endpoint.id, { status: 'disabled', disabledReason: reason });
      if (updated) endpoint.subscription = updated;
      this.#setIdle(endpoint, true);
      const abandoned = await this.#outbox.abandon(endpoint.id, Date.now());
      this.#context.logger.warn({ subscription: endpoint.id, reason, abandoned }, 'webhook subscription disabled');
    } catch (error) {
      this.#context.logger.error({ err: error, subscription: endpoint.id }, 'disabling a webhook subscription failed');
    } finally {
      endpoint.disabling = false;
    }
  }

  #wakeAt(endpoint: Endpoint, at: number): void {
    const wait = at - Date.now();
    if (this.#stopping || wait > timerHorizon) return;
    if (endpoint.timer && endpoint.timerAt <= at) return;
    clearTimeout(endpoint.timer);
    endpoint.timerAt = at;
    endpoint.timer = setTimeout(
      () => {
        endpoint.timer = undefined;
        this.#setIdle(endpoint, false);
        this.#kick();
      },
      Math.max(0, wait),
    );
    endpoint.timer.unref();
  }

  /** Finds due deliveries this node does not know about: retries, work of nodes that died, deliveries released. */
  async #poll(): Promise<void> {
    if (this.#polling || this.#stopping) return;
    this.#polling = true;
    try {
      const now = Date.now();
      for (const hold of await this.#outbox.expiredHolds(this.#dispatcher.transport, now)) await this.#recover(hold, now);
      const due = await this.#outbox.due(now, 1000);
      await Promise.all(
        due.map(async (id) => {
          const endpoint = this.#endpoint(id);
          if (!endpoint.subscription || !this.#deliverable(endpoint.subscription) || now - endpoint.refreshedAt > subscriptionTtl) {
            const subscription = await this.#context.subscriptions.get(id);
            if (!subscription) return this.#forget(endpoint);
            endpoint.subscription = subscription;
            endpoint.refreshedAt = now;
          }
          this.#setIdle(endpoint, false);
        }),
      );
      this.#kick();
    } catch (error) {
      this.#context.logger.warn({ err: error }, 'polling the webhook outbox failed');
    } finally {
      this.#polling = false;
    }
  }

  /**
   * Recovers a hold whose worker did not drop it in time (it died, most likely): the deliveries it held
   * that have no row yet are created pending. They are matched against the subscriptions as they are now.
   */
  async #recover(hold: Hold, now: number): Promise<void> {
    const events = (await this.#context.store.read({ after: hold.from, limit: hold.to - hold.from })).filter((event) => event.seq <= hold.to);
    const deliveries: NewDelivery[] = [];
    for (const id of hold.subscriptionIds) {
      const subscription = await this.#context.subscriptions.get(id);
      if (!subscription) continue;
      for (const event of events) {
        if (takesEvent(event, subscription.types, subscription.consumer)) deliveries.push({ id: newId('dlv'), subscriptionId: id, eventSeq: event.seq, eventId: event.id, nextAttemptAt: now });
      }
    }
    // Should this node be the one that held it, the deliveries it still counts are no longer its own.
    this.#holds.delete(hold.id);
    if (await this.#outbox.recoverHold(hold.id, deliveries, now)) {
      this.#context.logger.warn({ hold: hold.id, worker: hold.worker, deliveries: deliveries.length }, 'recovered the deliveries of an expired hold');
    }
  }

  /** Drops a deleted subscription's endpoint and deliveries. */
  async #forget(endpoint: Endpoint): Promise<void> {
    if (endpoint.inFlight > 0 || endpoint.queue.length > 0) return;
    clearTimeout(endpoint.timer);
    this.#setIdle(endpoint, true);
    this.#endpoints.delete(endpoint.id);
    await this.#outbox
      .purge(endpoint.id)
      .catch((error: unknown) => this.#context.logger.warn({ err: error }, 'purging the deliveries of a deleted subscription failed'));
  }

  async #prune(): Promise<void> {
    try {
      await this.#outbox.prune(Date.now() - this.#options.retention);
    } catch (error) {
      this.#context.logger.warn({ err: error }, 'pruning settled webhook deliveries failed');
    }
  }
}

/**
 * Settled attempts, held deliveries given back unsent (created pending), and holds whose deliveries
 * all have their rows (dropped): each commit writes them before its fan-out and claims.
 */
interface Writes {
  settle: SettledAttempt[];
  unhold: NewDelivery[];
  dropHolds: string[];
}

function noWrites(): Writes {
  return { settle: [], unhold: [], dropHolds: [] };
}

function hasWrites({ settle, unhold, dropHolds }: Writes): boolean {
  return settle.length + unhold.length + dropHolds.length > 0;
}

/** `first`'s writes, then `then`'s. */
function joinWrites(first: Writes, then: Writes): Writes {
  return { settle: [...first.settle, ...then.settle], unhold: [...first.unhold, ...then.unhold], dropHolds: [...first.dropHolds, ...then.dropHolds] };
}

/** The deliveries the fan-out holds under `lease` (in `hold`), as claims. */
function heldFromFanOut(prepared: PreparedFanOut, ids: readonly string[], lease: Lease, hold: string): Claimed[] {
  const held = new Set(ids);
  const events = new Map(prepared.events.map((event) => [event.seq, { event, body: '' }]));
  return prepared.fanOut.deliveries
    .filter((delivery) => held.has(delivery.id))
    .map((delivery) => {
      const fannedOut = events.get(delivery.eventSeq) as { event: HeraldEvent; body: string };
      fannedOut.body ||= JSON.stringify(fannedOut.event);
      return {
        delivery: createdDelivery(delivery, lease.now, lease),
        event: fannedOut.event,
        body: fannedOut.body,
        subscription: prepared.subscriptions.get(delivery.subscriptionId) as Subscription,
        held: delivery,
        hold,
      };
    });
}
