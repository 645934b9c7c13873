import type { HeraldDatabase } from '@herald/core';

/** A fan-out position of the outbox: every event up to `seq` has its deliveries. */
export interface OutboxPositionsTable {
  name: string;
  seq: number | string;
}

/** Times are ms since the epoch. */
export interface DeliveriesTable {
  id: string;
  subscription_id: string;
  event_seq: number | string;
  event_id: string;
  status: string;
  attempts: number;
  next_attempt_at: number | string | null;
  locked_by: string | null;
  locked_until: number | string | null;
  created_at: number | string;
  updated_at: number | string;
  /**
   * The attempt that delivered it, when it is kept on the row rather than in herald_delivery_attempts
   * (the first attempt of a delivery held by a fan-out, when it succeeds).
   */
  attempt_started_at: number | string | null;
  attempt_duration_ms: number | null;
  attempt_response_status: number | null;
  attempt_response_body: string | null;
}

export interface DeliveryAttemptsTable {
  delivery_id: string;
  subscription_id: string;
  attempt: number;
  started_at: number | string;
  duration_ms: number;
  outcome: string;
  response_status: number | null;
  response_body: string | null;
  error: string | null;
  next_attempt_at: number | string | null;
}

/** Deliveries a fan-out gave a worker rather than stored (see `Hold`); `subscription_ids` is a JSON array. */
export interface OutboxHoldsTable {
  id: string;
  name: string;
  worker: string;
  locked_until: number | string;
  from_seq: number | string;
  to_seq: number | string;
  subscription_ids: string;
}

/** Deliveries a replay handed a worker with their final rows left as they were (see `ReplayClaim.hold`); `delivery_ids` is a JSON array. */
export interface OutboxReplayHoldsTable {
  id: string;
  worker: string;
  locked_until: number | string;
  /** When the replay handed them over: a row still final and not changed since has not had its new round yet. */
  started_at: number | string;
  delivery_ids: string;
}

/**
 * When each subscription's newest delivering attempt kept on a stored delivery's row started (a retry's,
 * a replay's): those rows are not in `event_seq` order of time, so their newest is kept here.
 */
export interface OutboxSuccessesTable {
  subscription_id: string;
  at: number | string;
}

/**
 * Each rate-limited subscription's token bucket, shared by every worker (see `ClaimRequest.rateLimit`):
 * the tokens it held at `at`, refilled at the rate from then on.
 */
export interface OutboxRateLimitsTable {
  subscription_id: string;
  tokens: number;
  at: number | string;
}

/** Each subscription's running or last replay (`view`, its `ReplayView` as JSON), held by `worker` until `locked_until` while it runs. */
export interface OutboxReplaysTable {
  id: string;
  subscription_id: string;
  status: string;
  worker: string;
  locked_until: number | string;
  view: string;
}

/** The outbox's tables. */
export type OutboxTables = {
  herald_outbox_positions: OutboxPositionsTable;
  herald_deliveries: DeliveriesTable;
  herald_delivery_attempts: DeliveryAttemptsTable;
  herald_outbox_holds: OutboxHoldsTable;
  herald_outbox_successes: OutboxSuccessesTable;
  herald_outbox_replay_holds: OutboxReplayHoldsTable;
  herald_outbox_rate_limits: OutboxRateLimitsTable;
  herald_outbox_replays: OutboxReplaysTable;
};

/** The store's tables and the outbox's, as the outbox's queries see them. */
export type OutboxDatabase = HeraldDatabase & OutboxTables;
