import type { Generated } from 'kysely';

export interface EventsTable {
  seq: Generated<number | string>;
  id: string;
  type: string;
  source: string;
  subject: string | null;
  time: string;
  datacontenttype: string;
  /** JSON text. */
  data: string;
  consumer: string | null;
  /** PostgreSQL: the append ticket of the row's transaction (see `append-tickets.ts`); null on SQLite. */
  ticket: Generated<number | string | null>;
  /** CloudEvents distributed tracing: the W3C trace context of the publish. */
  traceparent: string | null;
  tracestate: string | null;
}

/** An event as a row of the log, before it has a `seq`. */
export type EventRow = Omit<EventsTable, 'seq' | 'ticket'>;

/** PostgreSQL: the id of each event of the log, kept unique here since the partitioned log cannot keep it unique (see `log-partitions.ts`). */
export interface EventIdsTable {
  id: string;
  seq: number | string;
}

export interface EventTypesTable {
  name: string;
  description: string | null;
  /** JSON Schema as JSON text. */
  schema: string | null;
  /** Added by 0009_log_retention. */
  retention: string | null;
  compaction: string | null;
  created_at: string;
}

export interface SubscriptionsTable {
  id: string;
  consumer: string;
  transport: string;
  /** JSON array. */
  types: string;
  status: string;
  /** JSON object. */
  config: string;
  cursor: number | string;
  disabled_reason: string | null;
  /** JSON object: the subscription's filter; null for none. */
  filter: string | null;
  created_at: string;
  updated_at: string;
}

export interface ApiKeysTable {
  id: string;
  role: string;
  consumer: string | null;
  hash: string;
  /** Added by 0024_key_labels_and_last_use, as `created_by` and `last_used_at`. */
  name: string | null;
  created_by: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  expires_at: string | null;
  parent_id: string | null;
  /** JSON array. */
  types: string | null;
}

export interface CountersTable {
  name: string;
  value: number | string;
}

/** Empty but while `SqlStore.ping` checks that the store takes writes again. */
export interface WriteProbeTable {
  pad: string;
}

/** The store's tables, as kysely sees them (extensions such as `@herald/outbox` add their own). */
export interface HeraldDatabase {
  herald_events: EventsTable;
  /** PostgreSQL only. */
  herald_event_ids: EventIdsTable;
  herald_event_types: EventTypesTable;
  herald_subscriptions: SubscriptionsTable;
  herald_counters: CountersTable;
  herald_api_keys: ApiKeysTable;
  herald_write_probe: WriteProbeTable;
}
