import type { HeraldEvent } from './envelope.js';
import { ForbiddenError } from './errors.js';
import { assertFilterFits, compileFilter, type EventFilter, type EventPredicate, parseFilter } from './event-filter.js';
import { readByPatterns } from './log-read.js';
import { outsideScope } from './names.js';
import { canAccess, visibleTo } from './principal.js';
import { SubscriptionNotFoundError, WrongTransportError } from './stream-errors.js';
import { MatchGroup, type MatchedBatch } from './stream-match-group.js';
import type { StreamEndReason, StreamSession } from './stream-session.js';
import type { StreamSessions } from './stream-sessions.js';

/** Why a resume position cannot be served: past the end of the log (it was replaced), or older than the log keeps. */
export type ResetReason = 'ahead' | 'expired';

/** What a client asks for: an ad hoc subscription (`types`) or a durable one (`subscription`), and where to resume. */
export interface StreamRequest {
  /** The client's name for it (a WebSocket `subscribe` message's `id`), for the transport's frames. @default '' */
  id?: string | undefined;
  /** Event types and patterns: an ad hoc subscription. Give exactly one of `types` and `subscription`. */
  types?: readonly string[] | undefined;
  /** The id of a durable subscription of this transport to attach to. */
  subscription?: string | undefined;
  /** Resume after this `seq`. @default a durable subscription's cursor; an ad hoc one starts live, at the end of the log */
  after?: number | undefined;
  /**
   * A last say on each event, after types, visibility and (durable) status and filter: a payload filter
   * (checked against the catalog's schemas of the types it will see by {@link StreamSubscription.resolve},
   * `InvalidFilterError`, then compiled once), or a predicate. It applies to the replay and to live events
   * alike, and the events it refuses still move a durable subscription's cursor. @default every event
   */
  filter?: EventFilter | EventPredicate | undefined;
}

/**
 * Where a session's events go: the transport's connection, which writes them in its wire format. The
 * session calls it in `seq` order; it must not wait (a slow client is the connection's to cut off).
 */
export interface StreamSink {
  /** Writes one event of `subscription`; false when the connection takes nothing more (it is closing). */
  deliver(subscription: StreamSubscription, event: HeraldEvent): boolean;
  /**
   * Writes every event of a live batch that `subscription` takes (`batch.events`, all after its position),
   * matched once for all the subscriptions that take the same events; what the transport encodes of them it
   * shares with the others through `batch.shared`. False when the connection takes nothing more. Without
   * it, the events go through {@link deliver} one by one, corked.
   */
  deliverMatched?(subscription: StreamSubscription, batch: MatchedBatch): boolean;
  /** Several events follow: hold what is written until {@link uncork} (one write, one system call). */
  cork(): void;
  uncork(): void;
  /**
   * `subscription`'s resume position could not be served; it goes on after `latest`. `ahead`: from the end of
   * the log. `expired`: from the resume position all the same, with what the log still holds after it (the
   * events its types keep, then everything from `oldest` on): the events in between were pruned.
   */
  reset(subscription: StreamSubscription, reason: ResetReason, latest: number, oldest?: number): void;
  /** The server ends the session for `reason`: say so in the wire format and close the connection. */
  end(reason: StreamEndReason): void;
  /** The durable subscription `subscription` attaches to was deleted: say so; it is closed after. @default nothing said */
  removed?(subscription: StreamSubscription): void;
  /** Resolves once the client has room again: a replay reads its next page then. @default no wait */
  drained?(subscription: StreamSubscription): Promise<void>;
}

/** What a {@link StreamSubscription.pull} asks for. */
export interface PullOptions {
  /** At most this many events. */
  limit: number;
  /** When nothing follows the position yet: how long to wait for the first event, in ms. @default 0 */
  wait?: number;
  /**
   * Once a waiting pull's first event has come: how long to wait for more before answering, in ms, so that
   * events published together go in one answer. It ends early when `limit` is reached. @default 0
   */
  batchWait?: number;
}

/** What a {@link StreamSubscription.pull} answers. */
export interface PullResult {
  /** The events the subscription takes, in `seq` order. */
  events: HeraldEvent[];
  /** Where the next pull goes on from: the last `seq` handed over, delivered or passed over. */
  next: number;
  /** Set when the resume position could not be served (see {@link StreamSink.reset}). */
  reset?: { reason: ResetReason; latest: number; oldest?: number };
  /** Whether it found nothing at once and waited for live events (answered by one, or by the end of its `wait`). */
  waited: boolean;
}

/** Pages of the log one pull reads at most before it answers with what it has (a very selective subscription). */
const pullPages = 10;

/** A subscription attached to a durable one: what its stored cursor has been told. */
interface DurableAttachment {
  readonly id: string;
  /** A stream token's types, which also limit the durable subscription's events. */
  readonly scope: readonly string[] | undefined;
  /** The last `seq` handed to the sink. */
  delivered: number;
  /** Everything up to here is acknowledged or passed over: the cursor is (being written) there. */
  acknowledged: number;
  /**
   * While a replay has yet to learn whether its resume position is past the end of the log: the highest
   * acknowledgement it covers (0: none), held until then so that the cursor never passes the log's end.
   */
  heldAck?: number | undefined;
}

/**
 * One subscription of a session, ad hoc or attached to a durable subscription. It decides which events
 * the client may have (types, visibility, the token's scope, the durable subscription's current status
 * and types, the filter), replays the log from a resume position and hands over to live events with no
 * gap and no duplicate, and moves a durable subscription's cursor. It holds no closures but a compiled filter, so an idle one
 * is one small object.
 *
 * The one rule for durable subscriptions: status and types are judged when an event is handed over, live
 * or from the log. An event the subscription does not take then (another type, paused or disabled,
 * filtered out) is passed over, and the cursor moves past it as past an acknowledged one.
 */
export class StreamSubscription {
  readonly session: StreamSession;
  /** The client's name for it (see {@link StreamRequest.id}). */
  readonly id: string;
  /** The last `seq` handed over: delivered, or passed over. Where it goes on from, and what may be acknowledged. */
  position = 0;
  #patterns: readonly string[];
  #visibleTo: string | undefined;
  #filter: EventFilter | EventPredicate | undefined;
  /** What decides the events it takes, shared with the session's other subscriptions that take the same: joined once resolved. */
  #group: MatchGroup | undefined;
  /** Until resolved, only the id of the durable subscription asked for. */
  #durable: DurableAttachment | undefined;
  #after: number | undefined;
  #sink: StreamSink | undefined;
  /** Live events that arrived while it replays (a new list when they were too many); undefined once live. */
  #held: HeraldEvent[] | undefined;
  #closed = false;

  /** Use {@link StreamSession.subscribe}. */
  constructor(session: StreamSession, request: StreamRequest) {
    this.session = session;
    this.id = request.id ?? '';
    this.#patterns = request.types ?? [];
    if (request.subscription !== undefined) this.#durable = { id: request.subscription, scope: undefined, delivered: 0, acknowledged: 0 };
    this.#after = request.after;
    this.#filter = request.filter;
  }

  /** The patterns it was allowed for: the ad hoc types, or the durable subscription's types when it attached. */
  get patterns(): readonly string[] {
    return this.#patterns;
  }

  /** The id of the durable subscription it attaches to. */
  get durable(): string | undefined {
    return this.#durable?.id;
  }

  /** Where it starts once resolved: the resume position (a durable subscription's cursor when none was asked for), or undefined for live from now. */
  get after(): number | undefined {
    return this.#after;
  }

  /** Taking live events (its replay, if any, is over). */
  get live(): boolean {
    return this.#sink !== undefined && this.#held === undefined && !this.#closed;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Checks the request against the session's principal. Ad hoc: the token's scope (`ForbiddenError`) and
   * the catalog (`ValidationError` `unknown-event-type`). Durable: that the principal may reach it
   * (`SubscriptionNotFoundError`, the same for another consumer's), that it is this transport's
   * (`WrongTransportError`), and that its types are within the scope. Both: a payload filter's form, and its
   * `data` paths against the schemas of the types it will see (`InvalidFilterError`).
   */
  async resolve(): Promise<void> {
    const { principal, sessions } = this.session;
    const id = this.#durable?.id;
    if (id === undefined) {
      const outside = outsideScope(principal.types, this.#patterns);
      if (outside.length > 0) throw new ForbiddenError(`This token may not stream ${outside.join(', ')}`);
      await sessions.ensureKnown(this.#patterns);
      this.#visibleTo = visibleTo(principal);
      this.#join(this.#filter, this.#compiledFilter(this.#patterns));
      return;
    }
    const stored = await sessions.context.subscriptions.get(id);
    if (!stored || !canAccess(principal, stored)) throw new SubscriptionNotFoundError(id);
    if (stored.transport !== sessions.transport) throw new WrongTransportError(id, stored.transport, sessions.transport);
    const outside = outsideScope(principal.types, stored.types);
    if (outside.length > 0) throw new ForbiddenError(`This token may not stream ${outside.join(', ')}`);
    const accepts = this.#compiledFilter(stored.types);
    this.#patterns = stored.types;
    this.#visibleTo = stored.consumer;
    this.#durable = { id, scope: principal.types, delivered: 0, acknowledged: stored.cursor };
    this.#after ??= stored.cursor;
    this.#join(this.#filter, accepts);
  }

  /**
   * Push: delivers to the session's sink, from {@link after} (the log first, page by page, waiting for the
   * sink to drain between pages) or live from now. Resolves once live. Rejects when the log cannot be read.
   */
  async start(): Promise<void> {
    const sink = this.session.sink;
    if (!sink) throw new Error('attach a sink to the session before starting its subscriptions');
    this.#sink = sink;
    if (this.#after === undefined) this.#goLive();
    else await this.#catchUp(this.#after, Number.POSITIVE_INFINITY);
  }

  /**
   * Request/response: the events after {@link after} (at most `limit`; a durable subscription's cursor is
   * acknowledged up to `after` first), or, when the log has none yet, the first that arrive within `wait`
   * ms. A subscription pulls once; it is closed when the answer is ready.
   */
  async pull({ limit, wait = 0, batchWait = 0 }: PullOptions): Promise<PullResult> {
    const collector = new PullCollector(limit);
    this.#sink = collector;
    try {
      const after = this.#after;
      let caughtUp = true;
      // At the end of the log there is nothing to read: live at once, without a query (a long-poller caught up).
      if (after === undefined || after === this.session.sessions.context.bus.latest) this.#goLive();
      else caughtUp = await this.#catchUp(after, pullPages);
      if (after !== undefined && this.#durable !== undefined && collector.resetTo === undefined) this.acknowledge(after);
      // A reset answers at once, so that the client learns of it before the next event.
      const waited = caughtUp && collector.events.length === 0 && collector.resetTo === undefined && wait > 0 && !this.#closed;
      if (waited) {
        await collector.waitForEvents(wait, () => true);
        if (batchWait > 0 && collector.events.length > 0 && !this.#closed) await collector.waitForEvents(batchWait, () => this.#closed || collector.full);
      }
      return { events: collector.events, next: this.position, waited, ...(collector.resetTo ? { reset: collector.resetTo } : {}) };
    } finally {
      this.close();
    }
  }

  /**
   * The client has handled everything up to `seq`: a WebSocket `ack`, an SSE frame handed to the operating
   * system, a poll that goes on from `seq`. A durable subscription's cursor moves there, and past the
   * events passed over after it when `seq` is the last one delivered. A `seq` at or below the cursor it
   * has been told (the stored one once {@link resolve}d, before the replay reaches it too) moves nothing,
   * as a cursor never goes back: true. False when `seq` is ahead of both it and {@link position} (nothing moves).
   * One that the resume position covers, before the replay has checked that position against the log, moves the
   * cursor once it has, no further than the end of the log (a position past it is reset: `ahead`).
   */
  acknowledge(seq: number): boolean {
    const durable = this.#durable;
    if (durable !== undefined && seq <= durable.acknowledged) return true;
    if (seq > this.position) return false;
    if (durable === undefined) return true;
    if (durable.heldAck !== undefined) {
      durable.heldAck = Math.max(durable.heldAck, seq);
      return true;
    }
    const upTo = seq >= durable.delivered ? this.position : seq;
    if (upTo > durable.acknowledged) {
      durable.acknowledged = upTo;
      this.session.sessions.cursors.advance(durable.id, upTo);
    }
    return true;
  }

  /**
   * For a durable subscription that ended after it was {@link resolve}d, before its replay started (the client left
   * while it was looked up): moves the cursor to `seq`, an ack at or below the `after` it resumed from, and no further
   * than the end of the log, as the replay would have (a position past it is reset: `ahead`), so that the next attach
   * still gets the events published since. A cursor never goes back.
   */
  async keepAcknowledged(seq: number): Promise<void> {
    const durable = this.#durable;
    if (durable === undefined || seq <= durable.acknowledged) return;
    const upTo = seq > this.#endOfLog() ? Math.min(seq, this.#endOfLog((await this.session.sessions.context.store.bounds()).latest)) : seq;
    if (upTo <= durable.acknowledged) return;
    durable.acknowledged = upTo;
    this.session.sessions.cursors.advance(durable.id, upTo);
  }

  /** The end of the log: the last `seq` the bus has seen, or the store's `latest`, if later. */
  #endOfLog(latest = 0): number {
    return Math.max(latest, this.session.sessions.context.bus.latest);
  }

  #compiledFilter(patterns: readonly string[]): EventPredicate | undefined {
    const filter = this.#filter;
    if (filter === undefined || typeof filter === 'function') return filter;
    const parsed = parseFilter(filter);
    assertFilterFits(parsed, patterns, this.session.sessions.context.catalog.list());
    return compileFilter(parsed);
  }

  /** Joins the group of the subscriptions of its transport that take the same events as it does. */
  #join(filter: EventFilter | EventPredicate | undefined, accepts: EventPredicate | undefined): MatchGroup {
    const durable = this.#durable;
    const { groups } = this.session.sessions;
    const rule = {
      patterns: this.#patterns,
      visibleTo: this.#visibleTo,
      ...(durable !== undefined ? { durable: { id: durable.id, scope: durable.scope } } : {}),
      filter,
      accepts,
    };
    // A closed subscription joins no group (it would never leave it).
    this.#group = this.#closed ? new MatchGroup(rule, undefined, () => false) : groups.join(rule);
    return this.#group;
  }

  /** What decides the events it takes (joined as it is, without its filter, if it was started without being resolved). */
  #matchGroup(): MatchGroup {
    return this.#group ?? this.#join(undefined, undefined);
  }

  /** For {@link StreamSessions}: a live batch from the bus, held while it replays, else handed over. */
  offer(events: readonly HeraldEvent[]): void {
    const held = this.#held;
    if (held === undefined) {
      this.#handLive(events);
      return;
    }
    // Too many: dropped, and read from the log instead (the replay sees the new list and reads on).
    if (held.length + events.length > this.session.sessions.holdLimit) this.#held = [];
    else for (const event of events) held.push(event);
  }

  /** The durable subscription it attaches to was deleted: the sink says so, and it closes. */
  removed(): void {
    if (this.#closed) return;
    this.#sink?.removed?.(this);
    this.close();
  }

  /** Stops delivering (an `unsubscribe`, or the session ending). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = undefined;
    if (this.#group !== undefined) this.session.sessions.groups.leave(this.#group);
    this.session.sessions.withdraw(this);
    this.session.forget(this);
    if (this.#sink instanceof PullCollector) this.#sink.wake?.();
  }

  #goLive(): void {
    this.position = this.session.sessions.context.bus.latest;
    if (this.#durable !== undefined) this.#durable.delivered = this.position;
    if (!this.#closed) this.session.sessions.offer(this);
  }

  /**
   * Replays the log after `after` (at most `pages` pages), holding live events meanwhile, then hands over
   * to them in the same tick: events committed during the replay are neither lost nor repeated. True when
   * it is live; false when it stopped first (closed, the sink took no more, or `pages` read).
   */
  async #catchUp(after: number, pages: number): Promise<boolean> {
    const { sessions } = this.session;
    const { store, bus } = sessions.context;
    const durable = this.#durable;
    this.position = after;
    if (durable !== undefined) {
      durable.delivered = after;
      durable.heldAck = 0;
    }
    if (this.#closed) return false;
    this.#held = [];
    sessions.offer(this);
    const sink = this.#sink as StreamSink;
    try {
      const { latest, oldest } = await store.bounds();
      const ahead = after > latest;
      if (ahead) this.position = this.#endOfLog(latest);
      if (durable !== undefined) this.#releaseHeld(durable);
      if (this.#closed) return false;
      if (ahead) {
        sink.reset(this, 'ahead', this.position);
        if (durable !== undefined) this.#passOver(durable);
      } else {
        if (oldest !== null && after < oldest - 1) this.#expired(after, oldest);
        // A durable subscription judges types as it hands over.
        const patterns = durable !== undefined ? undefined : this.#patterns;
        const visible = this.#visibleTo;
        let read = 0;
        let holding: HeraldEvent[] | undefined;
        do {
          holding = this.#held;
          for (;;) {
            if (sink.drained) await sink.drained(this);
            if (this.#closed) return false;
            if (read === pages) return this.#stopCatchingUp();
            read += 1;
            const page = await readByPatterns(store, sessions.context.catalog, {
              after: this.position,
              limit: sessions.replayBatchSize,
              ...(patterns ? { patterns } : {}),
              ...(visible !== undefined ? { visibleTo: visible } : {}),
            });
            if (this.#closed) return false;
            if (page.length === 0) break;
            if (!this.#hand(page)) return this.#stopCatchingUp();
          }
        } while (this.#held !== holding);
      }
      const held = this.#held;
      this.#held = undefined;
      if (held.length > 0 && !this.#hand(held)) return !this.#closed;
      // Every event up to the bus's latest was read or held: those not handed over are passed over.
      if (bus.latest > this.position) {
        this.position = bus.latest;
        if (durable !== undefined) this.#passOver(durable);
      }
      return !this.#closed;
    } catch (error) {
      if (this.#closed) return false;
      this.close();
      throw error;
    }
  }

  /** Acknowledges what was held while the resume position was unchecked, up to where the replay goes on from. */
  #releaseHeld(durable: DurableAttachment): void {
    const acked = durable.heldAck ?? 0;
    durable.heldAck = undefined;
    if (acked > 0) this.acknowledge(Math.min(acked, this.position));
  }

  /** The log was pruned past the resume position: the client is told, and goes on with what the log holds. */
  #expired(after: number, oldest: number): void {
    const { sessions } = this.session;
    (this.#sink as StreamSink).reset(this, 'expired', after, oldest);
    const durable = this.#durable;
    if (durable === undefined) return;
    // A durable cursor left behind by retention: said, counted, and moved to where the log is whole.
    // The transport's logger, which names the transport already (createHerald binds it).
    sessions.context.logger.warn(
      { subscription: durable.id, cursor: after, oldest },
      "a durable subscription's cursor is older than the log keeps: it is reset, and goes on with the oldest events kept",
    );
    sessions.context.metrics?.cursorReset?.();
    // Reset: past what was pruned (what its types keep below `oldest` is still delivered now, but not waited for).
    sessions.cursors.advance(durable.id, oldest - 1);
  }

  #stopCatchingUp(): false {
    this.#held = undefined;
    this.session.sessions.withdraw(this);
    return false;
  }

  /** Hands `events` to the sink, those after `position` that it takes; false when the sink takes no more. */
  #hand(events: readonly HeraldEvent[]): boolean {
    const going = this.#each(this.#sink as StreamSink, events, false);
    if (this.#durable !== undefined) this.#passOver(this.#durable);
    return going;
  }

  /**
   * Hands `events` to the sink one by one, corked when there are several: those it takes (`taken`: all of
   * them, already matched) and has not had. False when the sink takes no more.
   */
  #each(sink: StreamSink, events: readonly HeraldEvent[], taken: boolean): boolean {
    if (events.length === 1) return taken ? this.#deliver(sink, events[0] as HeraldEvent) : this.#take(sink, events[0] as HeraldEvent);
    let going = true;
    sink.cork();
    try {
      for (const event of events) if (!(going = taken ? this.#deliver(sink, event) : this.#take(sink, event))) break;
    } finally {
      sink.uncork();
    }
    return going;
  }

  /**
   * Hands a live batch over: what its group takes of it, matched once for the group, in one
   * {@link StreamSink.deliverMatched} when the sink has it and all of it is new; else event by event.
   */
  #handLive(events: readonly HeraldEvent[]): boolean {
    if (this.#closed) return false;
    const sink = this.#sink as StreamSink;
    const batch = this.session.sessions.groups.match(this.#matchGroup(), events);
    const { events: taken, last } = batch;
    const durable = this.#durable;
    const first = taken[0];
    let going = true;
    if (first === undefined) {
      // Nothing to deliver: passed over.
    } else if (first.seq > this.position && sink.deliverMatched !== undefined) {
      if (!sink.deliverMatched(this, batch)) return false;
      if (durable !== undefined) durable.delivered = (taken[taken.length - 1] as HeraldEvent).seq;
    } else going = this.#each(sink, taken, true);
    if (going && last > this.position) this.position = last;
    if (durable !== undefined) this.#passOver(durable);
    return going;
  }

  /** Delivers `event`, which the subscription takes, unless it has had it. */
  #deliver(sink: StreamSink, event: HeraldEvent): boolean {
    if (this.#closed) return false;
    if (event.seq <= this.position) return true;
    if (!sink.deliver(this, event)) return false;
    if (this.#durable !== undefined) this.#durable.delivered = event.seq;
    this.position = event.seq;
    return true;
  }

  /** Delivers `event` if the subscription takes it, else passes it over, unless it has had it. */
  #take(sink: StreamSink, event: HeraldEvent): boolean {
    if (this.#closed) return false;
    if (event.seq <= this.position) return true;
    if (this.#matchGroup().takes(event)) return this.#deliver(sink, event);
    this.position = event.seq;
    return true;
  }

  /** With everything delivered acknowledged, the events passed over since move the cursor too. */
  #passOver(durable: DurableAttachment): void {
    if (durable.delivered > durable.acknowledged || this.position <= durable.acknowledged) return;
    durable.acknowledged = this.position;
    this.session.sessions.cursors.advance(durable.id, this.position);
  }
}

/** A pull's sink: collects up to `limit` events and wakes the pull at the first. */
class PullCollector implements StreamSink {
  readonly events: HeraldEvent[] = [];
  resetTo: PullResult['reset'];
  wake: (() => void) | undefined;
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get full(): boolean {
    return this.events.length >= this.#limit;
  }

  /** Resolves after `ms`, or as soon as a wake (an event, the subscription closing) finds `done()`. */
  waitForEvents(ms: number, done: () => boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        if (!done()) return;
        clearTimeout(timer);
        resolve();
      };
    });
  }

  deliver(_subscription: StreamSubscription, event: HeraldEvent): boolean {
    if (this.full) return false;
    this.events.push(event);
    this.wake?.();
    return true;
  }

  cork(): void {}
  uncork(): void {}

  reset(_subscription: StreamSubscription, reason: ResetReason, latest: number, oldest?: number): void {
    this.resetTo = { reason, latest, ...(oldest !== undefined ? { oldest } : {}) };
  }

  end(): void {}
}
