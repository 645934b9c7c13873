/** What the matcher indexes: anything with an id and type patterns. */
export interface Matchable {
  readonly id: string;
  readonly types: readonly string[];
}

interface TrieNode<T> {
  exact: Map<string, TrieNode<T>>;
  any?: TrieNode<T>;
  /** Entries whose pattern ends here. */
  here: Map<string, T>;
  /** Entries whose pattern continues with a final `**`. */
  rest: Map<string, T>;
}

function node<T>(): TrieNode<T> {
  return { exact: new Map(), here: new Map(), rest: new Map() };
}

/** What a match has found so far; `seen` only once an entry with several patterns, which could be found twice, turns up. */
interface Found<T> {
  entries: T[];
  seen?: Set<string>;
}

/**
 * Adds `entries` to `found`. An entry with one pattern sits at one place in the trie, which a walk
 * reaches at most once, so only entries with several patterns need checking for repeats.
 */
function collect<T extends Matchable>(entries: Map<string, T>, found: Found<T>): void {
  for (const entry of entries.values()) {
    if (entry.types.length > 1) {
      found.seen ??= new Set();
      if (found.seen.has(entry.id)) continue;
      found.seen.add(entry.id);
    }
    found.entries.push(entry);
  }
}

/**
 * Finds the entries whose patterns match an event type by walking a trie of pattern segments,
 * so the cost grows with the depth of the type, not with the number of entries.
 */
export class SubscriptionMatcher<T extends Matchable> {
  readonly #root = node<T>();
  readonly #entries = new Map<string, T>();

  get size(): number {
    return this.#entries.size;
  }

  /** Adds an entry, replacing any earlier one with the same id. */
  set(entry: T): void {
    this.delete(entry.id);
    this.#entries.set(entry.id, entry);
    for (const pattern of entry.types) this.#insert(pattern.split('.'), entry);
  }

  delete(id: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    for (const pattern of entry.types) this.#prune(this.#root, pattern.split('.'), 0, id);
  }

  get(id: string): T | undefined {
    return this.#entries.get(id);
  }

  values(): IterableIterator<T> {
    return this.#entries.values();
  }

  /** Every entry with a pattern matching `type`, each once. */
  match(type: string): T[] {
    const found: Found<T> = { entries: [] };
    this.#visit(this.#root, type.split('.'), 0, found);
    return found.entries;
  }

  #visit(at: TrieNode<T>, segments: readonly string[], index: number, found: Found<T>): void {
    if (index === segments.length) {
      collect(at.here, found);
      return;
    }
    collect(at.rest, found);
    const next = at.exact.get(segments[index] as string);
    if (next) this.#visit(next, segments, index + 1, found);
    if (at.any) this.#visit(at.any, segments, index + 1, found);
  }

  #insert(segments: string[], entry: T): void {
    let at = this.#root;
    for (const segment of segments) {
      if (segment === '**') {
        at.rest.set(entry.id, entry);
        return;
      }
      if (segment === '*') at = at.any ??= node();
      else {
        let next = at.exact.get(segment);
        if (!next) at.exact.set(segment, (next = node()));
        at = next;
      }
    }
    at.here.set(entry.id, entry);
  }

  #prune(at: TrieNode<T>, segments: string[], index: number, id: string): boolean {
    const segment = segments[index];
    if (segment === undefined) at.here.delete(id);
    else if (segment === '**') at.rest.delete(id);
    else if (segment === '*') {
      if (at.any && this.#prune(at.any, segments, index + 1, id)) delete at.any;
    } else {
      const next = at.exact.get(segment);
      if (next && this.#prune(next, segments, index + 1, id)) at.exact.delete(segment);
    }
    return at.here.size === 0 && at.rest.size === 0 && at.exact.size === 0 && !at.any;
  }
}
