import type { NewEvent } from '../envelope.js';
import type { RetentionRules } from '../log-retention.js';
import type { SqlStore } from './sql-store.js';

export const day = 86_400_000;
/** The clock of the pruning tests. */
export const now = Date.parse('2026-06-01T00:00:00.000Z');
let counter = 0;

/** An event published `age` ms before `now`. */
export function agedEvent(type: string, age: number, subject?: string): NewEvent {
  counter += 1;
  return {
    specversion: '1.0',
    id: `evt_prune_${process.pid}_${counter}`,
    type,
    source: '/test',
    ...(subject !== undefined ? { subject } : {}),
    time: new Date(now - age).toISOString(),
    datacontenttype: 'application/json',
    data: { n: counter },
  };
}

/** The log's rules: 30 days, unless `overrides` says otherwise. */
export const rules = (overrides: Partial<RetentionRules> = {}): RetentionRules => ({ maxAge: 30 * day, types: new Map(), ...overrides });

/** Prunes until nothing more is ready, as the pruner's rounds do. */
export async function pruneAll(store: SqlStore, retention: RetentionRules, batchSize = 200): Promise<number> {
  let total = 0;
  for (;;) {
    const { pruned, more } = await store.prune(retention, now, batchSize);
    total += pruned;
    if (!more) return total;
  }
}
