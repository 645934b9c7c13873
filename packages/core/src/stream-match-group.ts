import { type HeraldEvent, publishedAt } from './envelope.js';
import type { EventFilter, EventPredicate } from './event-filter.js';
import { anyPatternMatches } from './pattern-cache.js';

/** What decides which events a subscription takes; subscriptions with equal ones share a {@link MatchGroup}. */
export interface MatchRule {
  /** The ad hoc types; a durable subscription's are judged by `durable` instead. */
  readonly patterns: readonly string[];
  /** Only events addressed to everyone and to this consumer; undefined: every event (an admin). */
  readonly visibleTo: string | undefined;
  /** The durable subscription's id and the stream token's types that limit it. */
  readonly durable?: { readonly id: string; readonly scope: readonly string[] | undefined };
  /** The filter as the client gave it (what makes rules equal), and compiled. */
  readonly filter: EventFilter | EventPredicate | undefined;
  readonly accepts: EventPredicate | undefined;
}

/**
 * The events of one live batch that a group of subscriptions takes, worked out once for all of them, and
 * what their transports make of them once ({@link shared}): each connection only writes.
 */
export class MatchedBatch {
  /** The events taken, in `seq` order. */
  readonly events: readonly HeraldEvent[];
  /** The `seq` of the batch's last event, taken or not. */
  readonly last: number;
  #shared?: Map<string, unknown>;
  #publishedAt?: readonly number[];

  constructor(events: readonly HeraldEvent[], last: number) {
    this.events = events;
    this.last = last;
  }

  /** When each of {@link events} was published (its `time`), in ms since the epoch: for every connection's delivery count. */
  get publishedAt(): readonly number[] {
    return (this.#publishedAt ??= this.events.map(publishedAt));
  }

  /**
   * What a transport makes of {@link events} for every connection that writes it the same way (`key`: the
   * subscription's id in the frames, a frame format): `make` runs for the first, the others get its result.
   */
  shared<T>(key: string, make: () => T): T {
    const shared = (this.#shared ??= new Map());
    if (shared.has(key)) return shared.get(key) as T;
    const made = make();
    shared.set(key, made);
    return made;
  }
}

/**
 * Subscriptions of one transport that take the very same events: the same types (or durable subscription
 * and token scope), visibility and filter. A live batch is matched once per group, not once per subscription.
 */
export class MatchGroup {
  readonly rule: MatchRule;
  /** The key it is kept under in {@link MatchGroups}; undefined for a group of its own (a predicate filter). */
  readonly key: string | undefined;
  /** The subscriptions in it: counted by {@link MatchGroups}, which drops it with the last. */
  members = 0;
  readonly #matchesDurable: (event: HeraldEvent, id: string) => boolean;
  #batch: readonly HeraldEvent[] | undefined;
  #matched: MatchedBatch | undefined;

  constructor(rule: MatchRule, key: string | undefined, matchesDurable: (event: HeraldEvent, id: string) => boolean) {
    this.rule = rule;
    this.key = key;
    this.#matchesDurable = matchesDurable;
  }

  /** Whether its subscriptions take `event`: visibility, then the types (a durable subscription's as they are now, and the token's scope), then the filter. */
  takes(event: HeraldEvent): boolean {
    const { visibleTo, durable, patterns, accepts } = this.rule;
    if (visibleTo !== undefined && event.consumer !== undefined && event.consumer !== visibleTo) return false;
    if (durable === undefined) {
      if (!anyPatternMatches(patterns, event.type)) return false;
    } else if (!this.#matchesDurable(event, durable.id) || (durable.scope !== undefined && !anyPatternMatches(durable.scope, event.type))) {
      return false;
    }
    return accepts === undefined || accepts(event);
  }

  /** What {@link match} found in `events`, if it was the last batch matched. */
  matched(events: readonly HeraldEvent[]): MatchedBatch | undefined {
    return this.#batch === events ? this.#matched : undefined;
  }

  /** The events of the live batch `events` that it takes. */
  match(events: readonly HeraldEvent[]): MatchedBatch {
    const taken: HeraldEvent[] = [];
    for (const event of events) if (this.takes(event)) taken.push(event);
    const matched = new MatchedBatch(taken, (events[events.length - 1] as HeraldEvent).seq);
    this.#batch = events;
    this.#matched = matched;
    return matched;
  }

  /** Lets go of the last batch. */
  forget(): void {
    this.#batch = undefined;
    this.#matched = undefined;
  }
}

/** The match groups of a transport's sessions, by rule. */
export class MatchGroups {
  readonly #groups = new Map<string, MatchGroup>();
  readonly #matchesDurable: (event: HeraldEvent, id: string) => boolean;
  /** Groups that matched the batch being offered. */
  #used: MatchGroup[] = [];

  constructor(matchesDurable: (event: HeraldEvent, id: string) => boolean) {
    this.#matchesDurable = matchesDurable;
  }

  /** Groups kept now. */
  get size(): number {
    return this.#groups.size;
  }

  /** The group of `rule`, joined: an existing one with an equal rule, or a new one. A predicate filter gets a group of its own. */
  join(rule: MatchRule): MatchGroup {
    const key = keyOf(rule);
    let group = key === undefined ? undefined : this.#groups.get(key);
    if (group === undefined) {
      group = new MatchGroup(rule, key, this.#matchesDurable);
      if (key !== undefined) this.#groups.set(key, group);
    }
    group.members += 1;
    return group;
  }

  /** Leaves `group`; it is dropped with its last member. */
  leave(group: MatchGroup): void {
    group.members -= 1;
    if (group.members === 0 && group.key !== undefined && this.#groups.get(group.key) === group) this.#groups.delete(group.key);
  }

  /** The events of the live batch `events` that `group` takes (worked out once per batch and group). */
  match(group: MatchGroup, events: readonly HeraldEvent[]): MatchedBatch {
    const matched = group.matched(events);
    if (matched !== undefined) return matched;
    this.#used.push(group);
    return group.match(events);
  }

  /** The batch has been offered to every subscription: the groups let go of it. */
  done(): void {
    for (const group of this.#used) group.forget();
    this.#used = [];
  }
}

/** Equal for rules that take the same events; undefined for a predicate (a function cannot be compared). */
function keyOf(rule: MatchRule): string | undefined {
  if (typeof rule.filter === 'function') return undefined;
  const { durable, visibleTo, patterns, filter } = rule;
  return JSON.stringify([durable?.id ?? null, durable?.scope ?? null, visibleTo ?? null, durable === undefined ? [...patterns].sort() : null, filter ?? null]);
}
