import type { HeraldEvent } from './envelope.js';
import type { EventCatalog } from './event-type-catalog.js';
import type { ReadOptions, Store } from './store.js';

/** A read of the log by type patterns: `patterns` instead of `types`. @default every type */
export type PatternReadOptions = Omit<ReadOptions, 'types'> & { patterns?: readonly string[] };

/**
 * Reads the log for `patterns`, resolved against the catalog first (see {@link EventCatalog.typesMatching}):
 * the store reads one index range per type, and nothing at all for patterns that match no type.
 */
export async function readByPatterns(store: Store, catalog: EventCatalog, { patterns, ...options }: PatternReadOptions): Promise<HeraldEvent[]> {
  const types = patterns && catalog.typesMatching(patterns);
  if (types?.length === 0) return [];
  return store.read({ ...options, ...(types ? { types } : {}) });
}
