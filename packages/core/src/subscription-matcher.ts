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
    const found = new Map<string, T>();
    const segments = type.split('.');
    const visit = (at: TrieNode<T>, index: number): void => {
      if (index === segments.length) {
        for (const [id, entry] of at.here) found.set(id, entry);
        return;
      }
      for (const [id, entry] of at.rest) found.set(id, entry);
      const next = at.exact.get(segments[index] as string);
      if (next) visit(next, index + 1);
      if (at.any) visit(at.any, index + 1);
    };
    visit(this.#root, 0);
    return [...found.values()];
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
