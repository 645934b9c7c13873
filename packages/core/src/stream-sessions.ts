import { CursorWriter } from './cursor-writer.js';
import type { HeraldEvent } from './envelope.js';
import { UnavailableError } from './errors.js';
import { actsWithKey, type Principal } from './principal.js';
import { MatchGroups } from './stream-match-group.js';
import { StreamSession } from './stream-session.js';
import type { StreamSubscription } from './stream-subscription.js';
import { deliverySpan } from './tracing.js';
import { TooManyConnectionsError, type TransportContext } from './transport.js';

/** What the sessions of a transport need of its context. */
export type StreamContext = Pick<TransportContext, 'store' | 'bus' | 'catalog' | 'subscriptions' | 'logger' | 'onKeyRevoked' | 'connections'> &
  Partial<Pick<TransportContext, 'metrics'>>;

/** How a transport's sessions behave; every option but `transport` has a default. */
export interface StreamSessionsOptions {
  /** The transport's name: the `transport` of the durable subscriptions its sessions may attach to. */
  transport: string;
  /** Milliseconds between writes of durable subscriptions' cursors. @default 1000 */
  cursorInterval?: number;
  /** Events read from the log per page while a subscription replays. @default 500 */
  replayBatchSize?: number;
  /** Live events a replaying subscription holds for after its replay; past it they are read from the log instead. @default 10000 */
  holdLimit?: number;
}

/**
 * The streaming sessions of one transport: WebSocket connections, SSE streams, long-poll requests. Each
 * {@link StreamSession} is one principal's; this object opens them (counting each against the server's
 * connection limit), offers every live event batch to their subscriptions through one bus listener,
 * ends the sessions of a revoked key, writes durable cursors, and stops them all.
 *
 * A transport makes one in `start(context)`, opens a session per connection, attaches its connection as
 * the session's {@link StreamSink}, and speaks only its wire format.
 */
export class StreamSessions {
  readonly transport: string;
  readonly context: StreamContext;
  readonly cursors: CursorWriter;
  readonly replayBatchSize: number;
  readonly holdLimit: number;
  /** The subscriptions that take the same events, each group matching a live batch once. */
  readonly groups: MatchGroups;
  readonly #sessions = new Set<StreamSession>();
  /** Every started subscription: holding live events while it replays, or taking them. */
  readonly #offered = new Set<StreamSubscription>();
  readonly #stopListening: () => void;
  readonly #stopRevocations: () => void;
  readonly #stopRemovals: () => void;
  #stopped = false;

  constructor(context: StreamContext, options: StreamSessionsOptions) {
    this.transport = options.transport;
    this.context = context;
    this.replayBatchSize = options.replayBatchSize ?? 500;
    this.holdLimit = options.holdLimit ?? 10_000;
    this.cursors = new CursorWriter(context.subscriptions, context.logger, options.cursorInterval ?? 1_000);
    this.groups = new MatchGroups((event, id) => this.matchesDurable(event, id));
    this.#stopListening = context.bus.onEvents((events) => {
      // No span for a batch no subscription of this transport is offered.
      if (this.#offered.size === 0) return;
      const span = deliverySpan(this.transport, events);
      try {
        for (const subscription of this.#offered) subscription.offer(events);
      } finally {
        this.groups.done();
        span.end();
      }
    });
    this.#stopRevocations = context.onKeyRevoked((keyId) => {
      for (const session of this.#sessions) if (actsWithKey(session.principal, keyId)) session.end('revoked');
    });
    this.#stopRemovals = context.subscriptions.onRemoved((id) => {
      for (const subscription of this.#offered) if (subscription.durable === id) subscription.removed();
    });
  }

  /** Sessions open now. */
  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Opens a session for `principal`, counted against the server's connection limit until it is closed.
   * Throws {@link TooManyConnectionsError} (429) when the credential is at its limit, and an
   * `UnavailableError` (503) once stopped.
   */
  open(principal: Principal): StreamSession {
    if (this.#stopped) throw new UnavailableError('The server is stopping; reconnect to another node or later');
    const release = this.context.connections.acquire(principal);
    if (!release) throw new TooManyConnectionsError();
    const session = new StreamSession(this, principal, release);
    this.#sessions.add(session);
    return session;
  }

  /**
   * Stops: refuses new sessions, stops taking events and revocations, ends every open session
   * (`stopping`), awaits `drain` (the transport waiting for its connections to close), then writes the
   * cursors still pending.
   */
  async stop(drain?: () => Promise<void>): Promise<void> {
    this.#stopped = true;
    this.#stopListening();
    this.#stopRevocations();
    this.#stopRemovals();
    for (const session of [...this.#sessions]) session.end('stopping');
    try {
      await drain?.();
    } finally {
      await this.cursors.close();
    }
  }

  /** Refuses patterns that match no event type in the catalog, once a miss has reloaded it: the catalog's `ensureKnown`. */
  ensureKnown(patterns: readonly string[]): Promise<void> {
    return this.context.catalog.ensureKnown(patterns);
  }

  /** Whether the durable subscription `id` is active and matches `event` right now (worked out once per event). */
  matchesDurable(event: HeraldEvent, id: string): boolean {
    return this.context.subscriptions.matchedIds(event, this.transport).has(id);
  }

  /** For {@link StreamSubscription}: offer it every live batch from now on. */
  offer(subscription: StreamSubscription): void {
    this.#offered.add(subscription);
  }

  /** For {@link StreamSubscription}: offer it nothing more. */
  withdraw(subscription: StreamSubscription): void {
    this.#offered.delete(subscription);
  }

  /** For {@link StreamSession}: forget a closed session. */
  forget(session: StreamSession): void {
    this.#sessions.delete(session);
  }
}
