import type { HeraldEvent, Subscription } from '@herald/core';
import type { ReplayView } from './replay-view.js';

/** `pending` waits for its next attempt (or is being attempted under a lease); `delivered` and `failed` are final. */
export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One event on its way to one subscription's endpoint, as the outbox keeps it. Times are ms since the epoch. */
export interface Delivery {
  id: string;
  subscriptionId: string;
  eventSeq: number;
  eventId: string;
  status: DeliveryStatus;
  /** Attempts in the current round; a manual retry or a replay starts a new round. */
  attempts: number;
  /** When the next attempt is due; null once final. */
  nextAttemptAt: number | null;
  /** The worker holding the delivery while it attempts it. */
  lockedBy: string | null;
  /** When that worker's lease ends; after it, any worker may claim the delivery again. */
  lockedUntil: number | null;
  createdAt: number;
  updatedAt: number;
}

/** One try at sending a delivery. */
export interface DeliveryAttempt {
  deliveryId: string;
  subscriptionId: string;
  /** 1 for the first attempt of a round. */
  attempt: number;
  startedAt: number;
  durationMs: number;
  outcome: 'succeeded' | 'failed';
  /** The status the destination answered with (an HTTP status), when it answered with one. */
  responseStatus?: number;
  /** The start of the destination's answer (a few KiB at most). */
  responseBody?: string;
  /** Why the attempt failed. */
  error?: string;
  /** When the delivery is tried again after this attempt; absent when the attempt left it final. */
  nextAttemptAt?: number;
}

/** A delivery to create: the pair (subscription, event) is unique in the outbox. */
export interface NewDelivery {
  id: string;
  subscriptionId: string;
  eventSeq: number;
  eventId: string;
  /** When the first attempt is due. */
  nextAttemptAt: number;
  /**
   * In a fan-out: held under the batch's lease for the worker to send at once, rather than stored.
   * Its row is created when its first attempt is settled (or when it is given back unsent, or when the
   * hold runs out), so that a delivery sent once costs one row write instead of two.
   */
  claimed?: boolean;
}

/** A new delivery as the outbox creates it at `now`: held under `lease`, its first attempt counted, when it is marked claimed and a lease is given. */
export function createdDelivery(delivery: NewDelivery, now: number, lease?: Lease): Delivery {
  const claimed = delivery.claimed === true && lease !== undefined;
  return {
    id: delivery.id,
    subscriptionId: delivery.subscriptionId,
    eventSeq: delivery.eventSeq,
    eventId: delivery.eventId,
    status: 'pending',
    attempts: claimed ? 1 : 0,
    nextAttemptAt: delivery.nextAttemptAt,
    lockedBy: claimed ? lease.worker : null,
    lockedUntil: claimed ? lease.until : null,
    createdAt: now,
    updatedAt: now,
  };
}

/** Who claims, and for how long. */
export interface Lease {
  worker: string;
  /** The current time, ms since the epoch. */
  now: number;
  /** When the claims made under this lease expire. */
  until: number;
}

/** Claim up to `limit` due deliveries of one subscription, oldest event first. */
export interface ClaimRequest {
  subscriptionId: string;
  limit: number;
  /** One at a time in `seq` order: claim only the subscription's oldest pending delivery, and only when nobody holds it. */
  ordered?: boolean;
  /**
   * Deliveries per second to the endpoint, across every worker: claim no more than the subscription's
   * token bucket holds (one second's worth, at least one, refilled at this rate), shared by all workers,
   * and spend a token on each delivery claimed.
   */
  rateLimit?: number;
}

/** A claimed delivery with what is needed to send it. */
export interface ClaimedDelivery {
  delivery: Delivery;
  /** Absent when the event is no longer in the log. */
  event?: HeraldEvent;
  /** The event as JSON, when the outbox has it as text already; else the engine writes it. */
  body?: string;
  /** Absent when the subscription was deleted. */
  subscription?: Subscription;
}

/** An attempt made under a lease, and the state it leaves its delivery in: what settling records. */
export interface SettledAttempt {
  attempt: DeliveryAttempt;
  /** `pending` schedules another attempt at `attempt.nextAttemptAt`. */
  status: DeliveryStatus;
  /** The delivery, when a fan-out held it rather than stored it: the settle creates its row. */
  held?: NewDelivery;
  /**
   * The delivery was final when a replay handed it over, and its row was left as it was (see
   * {@link ReplayClaim.claimed}): the settle starts its new round with this attempt, unless the row is pending again by then.
   */
  startsRound?: true;
}

/**
 * Deliveries a fan-out gave a worker to send rather than stored: those of `subscriptionIds` for the
 * events in (`from`, `to`] that have no row. When its lease ends before the worker drops it, any worker
 * may recover it: the deliveries still missing are created pending.
 */
export interface Hold {
  id: string;
  /** The fan-out position it came from. */
  name: string;
  worker: string;
  lockedUntil: number;
  from: number;
  to: number;
  subscriptionIds: string[];
}

/** Moves a fan-out position from `from` to `to` and creates the deliveries of the events in between. */
export interface FanOut {
  name: string;
  from: number;
  to: number;
  deliveries: readonly NewDelivery[];
  /** The version of the subscriptions the deliveries were matched against (`Store['subscriptions']['version']`). */
  subscriptionVersion?: number;
}

/** Work done in one transaction, in this order: settle, give back, drop holds, fan out, claim. */
export interface OutboxBatch {
  lease: Lease;
  settle?: readonly SettledAttempt[];
  /** Held deliveries given back unsent: created pending, due at once, their attempt not counted. */
  unhold?: readonly NewDelivery[];
  /** Holds of this worker whose deliveries all have their rows now; replay holds ({@link ReplayClaim.hold}) whose deliveries all settled or went back. */
  dropHolds?: readonly string[];
  fanOut?: FanOut;
  claim?: readonly ClaimRequest[];
}

export interface OutboxBatchResult {
  /**
   * False when the fan-out position was no longer `from` (another node moved it) or the subscriptions
   * were no longer at `subscriptionVersion`: nothing of the fan-out was written.
   */
  fannedOut: boolean;
  /** The fan-out position after the batch. */
  position?: number;
  /** The ids of the fan-out's deliveries held under the lease: those marked `claimed` that did not exist yet. */
  claimedInFanOut: string[];
  /** The hold they are in, when there are any. */
  hold?: string;
  claimed: ClaimedDelivery[];
  /** The subscriptions that had more due than their rate limit let the claim take, and when each has a token again (ms since the epoch). */
  rateLimited?: ReadonlyMap<string, number>;
}

/** What a replay made: how many deliveries it created or started again, and those it holds under its lease. */
export interface ReplayClaim {
  replayed: number;
  /**
   * Held by the lease's worker, their first attempt counted. Those whose rows were final are marked
   * `startsRound` and their rows left as they were, for the attempt's settle to write once (a replay of delivered
   * events writes each row once rather than twice); until then the outbox shows them as they were.
   */
  claimed: ReplayedDelivery[];
  /**
   * The replay hold of those marked `startsRound`, when there are any: it has the lease's worker and end, and
   * should the worker not drop it by then (with `OutboxBatch.dropHolds`, once they all settled or went back),
   * {@link Outbox.recoverReplayHolds} starts the new round of those still as they were.
   */
  hold?: string;
}

/** A delivery a replay holds for its worker to send. */
export interface ReplayedDelivery {
  delivery: Delivery;
  /** Its row is left as it was: see {@link SettledAttempt.startsRound}. */
  startsRound?: true;
}

/** Which deliveries of a subscription to list, newest event first. */
export interface DeliveryListOptions {
  /** @default 50 */
  limit?: number;
  /** Only deliveries of events with a smaller `seq`. */
  before?: number;
  status?: DeliveryStatus;
}

/**
 * The replays of every node (see {@link Outbox.replays}): at most one running per subscription, each held
 * by the worker that runs it under a lease, which it renews as it goes.
 */
export interface ReplayRecords {
  /** Records `replay` as running under `lease`; when another replay of its subscription runs, records nothing and returns that one. */
  begin(replay: ReplayView, lease: Lease): Promise<ReplayView | undefined>;
  /**
   * Records how far `replay` got and holds it until `lease.until`; false, writing nothing, when it no longer
   * runs under `lease.worker` (it was cancelled, or taken over once its lease ended).
   */
  progress(replay: ReplayView, lease: Lease): Promise<boolean>;
  /** Records how `replay` ended, unless it no longer runs under `worker`. */
  finish(replay: ReplayView, worker: string): Promise<void>;
  /** The subscription's running replay, or else its last one. */
  latest(subscriptionId: string): Promise<ReplayView | undefined>;
  /** Cancels the subscription's running replay, whichever worker runs it, with `error` as the reason; undefined when none runs. */
  cancel(subscriptionId: string, error: string, now: number): Promise<ReplayView | undefined>;
  /** Takes over, under `lease`, the running replays of `transport`'s subscriptions whose lease ended before `lease.now`. */
  takeOver(transport: string, lease: Lease): Promise<ReplayView[]>;
}

/**
 * The durable outbox of push transports (webhooks, queues): deliveries of events to subscriptions, their
 * attempts, and fan-out positions in the log (one per transport, named after it). Workers claim due deliveries under a lease, so the
 * claims of a worker that died come back when its lease ends, and two workers never hold the same
 * delivery at once.
 */
export interface Outbox {
  /** The fan-out position `name`: the events up to it have their deliveries. Created at `initial` when missing. */
  position(name: string, initial: number): Promise<number>;
  /**
   * Settles attempts, fans out and claims, atomically. A killed process keeps what it committed; a power
   * loss may undo the last commits (not the events, which are synced as they are appended), and that
   * only sends their deliveries again.
   */
  commit(batch: OutboxBatch): Promise<OutboxBatchResult>;
  /** Gives claimed deliveries back without counting an attempt. */
  release(worker: string, deliveryIds: readonly string[]): Promise<void>;
  /** The holds of fan-out `name` whose lease ended before `now`. */
  expiredHolds(name: string, now: number): Promise<Hold[]>;
  /**
   * Recovers an expired hold: drops it and creates those of `deliveries` that have no row, pending and
   * due at `now`, in one transaction; false (and nothing written) when it is gone or its lease has not ended.
   */
  recoverHold(id: string, deliveries: readonly NewDelivery[], now: number): Promise<boolean>;
  /**
   * Subscriptions of `transport` that have deliveries due by `now` that nobody holds, and deleted
   * subscriptions that have some (for their deliveries to be purged).
   */
  due(transport: string, now: number, limit: number): Promise<string[]>;
  get(deliveryId: string): Promise<Delivery | undefined>;
  list(subscriptionId: string, options?: DeliveryListOptions): Promise<Delivery[]>;
  /** The attempts of these deliveries, oldest first. */
  attempts(deliveryIds: readonly string[]): Promise<DeliveryAttempt[]>;
  /** Starts a new round for one delivery, due at `now`, whatever its status; undefined when there is none. */
  retry(deliveryId: string, now: number): Promise<Delivery | undefined>;
  /** Creates these deliveries, or starts a new round for those that exist; returns how many. */
  replay(deliveries: readonly NewDelivery[], now: number): Promise<number>;
  /**
   * `replay` at `lease.now`, holding those of `deliveries` marked `claimed` under `lease` for the caller to
   * send at once (their first attempt counted), but those in flight, which it lets go as `replay` does. Those
   * whose rows were final it leaves unwritten (`startsRound`): the caller settles their attempts with that mark,
   * or, should it not send them, gives them to `replay`. Optional: without it, a replay's deliveries are claimed
   * as any others are.
   */
  replayClaiming?(deliveries: readonly NewDelivery[], lease: Lease): Promise<ReplayClaim>;
  /**
   * Recovers the replay holds whose lease ended before `now` (their worker died, most likely): each one's
   * deliveries whose rows are still final and unchanged since the hand-over start their new round, pending
   * and due at `now`, and the hold is dropped, in one transaction. Returns the holds recovered, by id, with how
   * many deliveries each started again. Present with `replayClaiming`.
   */
  recoverReplayHolds?(now: number): Promise<{ id: string; worker: string; restarted: number }[]>;
  /**
   * Where replays are recorded, so that every node shows and cancels them and one whose node stopped or
   * died is taken over. Optional: without it, a replay is known only to the node that runs it, and ends with it.
   */
  readonly replays?: ReplayRecords;
  /** When the run of failed attempts of a subscription began (the first failure after its last success). */
  failingSince(subscriptionId: string): Promise<number | undefined>;
  /** Marks the pending deliveries of a subscription failed, with no further attempt; returns how many. */
  abandon(subscriptionId: string, now: number): Promise<number>;
  /** Deletes every delivery and attempt of a subscription. */
  purge(subscriptionId: string): Promise<void>;
  /** How many deliveries to subscriptions of `transport` are pending. */
  backlog(transport: string): Promise<number>;
  /**
   * Deletes the final deliveries (and their attempts) of `transport`'s subscriptions, and of deleted ones,
   * last changed before `before`; returns how many.
   */
  prune(transport: string, before: number): Promise<number>;
}
