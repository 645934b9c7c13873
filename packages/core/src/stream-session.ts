import { type CredentialEndReason, ForbiddenError } from './errors.js';
import { outsideScope } from './names.js';
import type { Principal } from './principal.js';
import type { StreamSessions } from './stream-sessions.js';
import { type StreamRequest, type StreamSink, StreamSubscription } from './stream-subscription.js';
import { TooManyConnectionsError } from './transport.js';

/** Why the server ends a session: its key was revoked, its stream token expired, or the server is stopping. */
export type StreamEndReason = CredentialEndReason | 'stopping';

const maxTimer = 2_147_483_647;

/**
 * One principal's streaming session: a WebSocket connection, an SSE stream, a long-poll request. It
 * holds the connection's slot in the server's limit per key, resolves the subscriptions the client asks
 * for (ad hoc or durable, within the principal's scope and visibility), and ends when the key is
 * revoked, the stream token expires or the server stops, telling its {@link StreamSink} why. Open one
 * with {@link StreamSessions.open}; call {@link close} when the connection is gone.
 */
export class StreamSession {
  readonly sessions: StreamSessions;
  #principal: Principal;
  /** Gives the connection's slot back; undefined once the session is closed. */
  #release: (() => void) | undefined;
  #sink?: StreamSink;
  /** At most a few, so a list (smaller than a Map for the usual one or two). */
  #subscriptions?: StreamSubscription[];
  #expiry?: NodeJS.Timeout;
  #ended?: StreamEndReason;

  /** Use {@link StreamSessions.open}. */
  constructor(sessions: StreamSessions, principal: Principal, release: () => void) {
    this.sessions = sessions;
    this.#principal = principal;
    this.#release = release;
    this.#armExpiry();
  }

  get principal(): Principal {
    return this.#principal;
  }

  /** Where the session's events go; set by {@link attach}. */
  get sink(): StreamSink | undefined {
    return this.#sink;
  }

  /** Why the server ended the session, once it has. */
  get ended(): StreamEndReason | undefined {
    return this.#ended;
  }

  /** The subscriptions the session holds, in the order they were made (also those still resolving or replaying). */
  get subscriptions(): readonly StreamSubscription[] {
    return this.#subscriptions ?? [];
  }

  /** Sends the session's events, resets and end to `sink` (the transport's connection). Ends it at once if the session has ended already. */
  attach(sink: StreamSink): void {
    this.#sink = sink;
    if (this.#ended !== undefined) sink.end(this.#ended);
  }

  /**
   * Takes a subscription request: the subscription is held by the session at once (so its `id` is taken),
   * then {@link StreamSubscription.resolve} checks it and {@link StreamSubscription.start} (push) or
   * {@link StreamSubscription.pull} (request/response) delivers.
   */
  subscribe(request: StreamRequest): StreamSubscription {
    const subscription = new StreamSubscription(this, request);
    if (this.#release === undefined || this.#ended !== undefined) subscription.close();
    else if (this.#subscriptions) this.#subscriptions.push(subscription);
    // A literal, not push() on an empty list, which would reserve room for 17.
    else this.#subscriptions = [subscription];
    return subscription;
  }

  /** The subscription the client calls `id`. */
  find(id: string): StreamSubscription | undefined {
    return this.#subscriptions?.find((subscription) => subscription.id === id);
  }

  /**
   * Replaces the credential (a WebSocket client refreshing its stream token). The new one must be for the
   * same consumer and role, and its types must cover every open subscription (else `ForbiddenError`); a
   * different credential counts the connection against its own limit (else `TooManyConnectionsError`).
   * Nothing changes when it throws.
   */
  refresh(principal: Principal): void {
    if (this.#release === undefined) return;
    const previous = this.#principal;
    if (previous.role !== principal.role || previous.consumer !== principal.consumer) {
      throw new ForbiddenError('a refreshed token must be for the same consumer');
    }
    const open = this.subscriptions.flatMap((subscription) => subscription.patterns);
    if (outsideScope(principal.types, open).length > 0) throw new ForbiddenError("the refreshed token's types do not cover the open subscriptions");
    if (previous.keyId !== principal.keyId) {
      const release = this.sessions.context.connections.acquire(principal);
      if (!release) throw new TooManyConnectionsError();
      this.#release();
      this.#release = release;
    }
    this.#principal = principal;
    this.#armExpiry();
  }

  /** The server ends the session: its subscriptions stop at once, and the sink is told why (it closes the connection). */
  end(reason: StreamEndReason): void {
    if (this.#release === undefined || this.#ended !== undefined) return;
    this.#ended = reason;
    this.#stopDelivering();
    this.#sink?.end(reason);
  }

  /** The connection is gone (or going): delivery stops and the slot in the connection limit is given back. */
  close(): void {
    const release = this.#release;
    if (release === undefined) return;
    this.#release = undefined;
    this.#stopDelivering();
    release();
    this.sessions.forget(this);
  }

  /** For {@link StreamSubscription.close}. */
  forget(subscription: StreamSubscription): void {
    const list = this.#subscriptions;
    const index = list?.indexOf(subscription) ?? -1;
    if (index >= 0) list?.splice(index, 1);
  }

  #stopDelivering(): void {
    clearTimeout(this.#expiry);
    this.#expiry = undefined;
    const list = this.#subscriptions;
    this.#subscriptions = undefined;
    for (const subscription of list ?? []) subscription.close();
  }

  #armExpiry(): void {
    clearTimeout(this.#expiry);
    this.#expiry = undefined;
    const { expiresAt } = this.#principal;
    if (expiresAt === undefined) return;
    const left = Math.max(0, Date.parse(expiresAt) - Date.now());
    this.#expiry = setTimeout(() => this.end('token-expired'), Math.min(left, maxTimer));
    this.#expiry.unref();
  }
}
