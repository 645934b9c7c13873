import type { Duplex } from 'node:stream';
import { canAccess, type CursorWriter, HeraldError, type HeraldEvent, openEventFeed, outsideScope, type Principal, type TransportContext, visibleTo } from '@herald/core';
import { WebSocket } from 'ws';
import { ClientSubscription, type SubscriptionOwner } from './client-subscription.js';
import { patternMatches } from './pattern-cache.js';
import type { ResolvedWebSocketOptions } from './websocket-options.js';
import {
  type AckMessage,
  CloseCode,
  closeReason,
  type ErrorCode,
  type EventFrames,
  parseClientMessage,
  type SubscribeMessage,
  serverMessage,
} from './websocket-protocol.js';

/** What every connection shares, owned by the transport. */
export interface ConnectionHost {
  readonly context: TransportContext;
  readonly options: ResolvedWebSocketOptions;
  readonly frames: EventFrames;
  readonly cursors: CursorWriter;
  /** The transport's name: the `transport` of the durable subscriptions it serves. */
  readonly name: string;
  /** Forgets a closed connection. */
  release(connection: Connection): void;
  /** Whether the durable subscription `id` is active and matches `event` right now. */
  durableMatches(event: HeraldEvent, id: string): boolean;
  /** Subscriptions the transport's bus listener offers each batch to. */
  readonly live: Set<ClientSubscription>;
}

/** A credential checked and counted against the server's connection limit, with the function that gives its slot back. */
export interface Admitted {
  principal: Principal;
  release: () => void;
}

const textFrame = { binary: false } as const;
const tooManyConnections = 'this key has too many open connections';
const maxMessagesWhileAuthenticating = 100;
const maxTimer = 2_147_483_647;
/** Events per replay page: small, so one page adds little to a send buffer that has just drained. */
const replayBatchSize = 100;
const drainPollInterval = 10;

/**
 * The server's WebSocket class (ws's `WebSocket` option): it hands ws's events straight to its
 * connection instead of through listeners, so an idle connection carries no listener table and no
 * closures of its own. Events without a connection (or `close`, which `whenClosed` may wait on)
 * still go to listeners.
 */
export class HeraldWebSocket extends WebSocket {
  connection?: Connection;

  /**
   * Holds the frames sent until {@link uncork}, then hands them to the kernel in one write: a batch
   * of events costs one system call per connection instead of one per frame.
   */
  cork(): void {
    (this as unknown as { _socket?: Duplex })._socket?.cork();
  }

  uncork(): void {
    (this as unknown as { _socket?: Duplex })._socket?.uncork();
  }

  override emit(event: string | symbol, ...args: any[]): boolean {
    const connection = this.connection;
    if (connection) {
      switch (event) {
        case 'message':
          connection.receive(args[0] as Buffer, args[1] as boolean);
          return true;
        case 'pong':
          connection.alive = true;
          return true;
        case 'error':
          connection.failed(args[0] as Error);
          return true;
        case 'close':
          connection.closed();
          break;
      }
    }
    return super.emit(event, ...args);
  }
}

/** A client speaking herald.v1 on one WebSocket. */
export class Connection implements SubscriptionOwner {
  readonly ws: HeraldWebSocket;
  /** Set until the connection answers a protocol ping. */
  alive = true;
  readonly #host: ConnectionHost;
  /** At most `maxSubscriptions`, so a list (smaller than a Map for the usual one or two). */
  #subscriptions?: ClientSubscription[];
  #principal?: Principal;
  /** Gives back the connection's slot in the server's per-key limit. */
  #release?: () => void;
  #closing = false;
  #authenticating?: Promise<void>;
  #queued?: [Buffer, boolean][];
  #authTimer?: NodeJS.Timeout;
  #expiryTimer?: NodeJS.Timeout;
  #killTimer?: NodeJS.Timeout;
  #whenClosed?: Promise<void>;
  #isClosed = false;

  /** @param admitted set when the upgrade carried a valid `Authorization` header. */
  constructor(ws: HeraldWebSocket, host: ConnectionHost, admitted?: Admitted) {
    this.ws = ws;
    this.#host = host;
    ws.connection = this;
    if (admitted) {
      this.#release = admitted.release;
      this.#authenticated(admitted.principal);
    } else {
      this.#authTimer = setTimeout(() => this.close(CloseCode.AuthTimeout, 'no auth message in time'), host.options.authTimeout);
      this.#authTimer.unref();
    }
  }

  /** Resolves once the socket has closed. */
  whenClosed(): Promise<void> {
    if (this.#isClosed) return Promise.resolve();
    this.#whenClosed ??= new Promise((resolve) => this.ws.once('close', () => resolve()));
    return this.#whenClosed;
  }

  /** The socket closed (`ws`'s close event). */
  closed(): void {
    this.#isClosed = true;
    this.#cleanUp();
    this.#release?.();
    this.#release = undefined;
    clearTimeout(this.#killTimer);
    this.#killTimer = undefined;
    this.#host.release(this);
  }

  failed(error: Error): void {
    this.#host.context.logger.debug({ err: error }, 'websocket error');
  }

  get principal(): Principal | undefined {
    return this.#principal;
  }

  get subscriptionCount(): number {
    return this.#subscriptions?.length ?? 0;
  }

  durableMatches(event: HeraldEvent, id: string): boolean {
    return this.#host.durableMatches(event, id);
  }

  /** Pings at the protocol level; terminates the connection if the previous ping went unanswered. */
  heartbeat(): void {
    if (!this.alive) {
      this.ws.terminate();
      return;
    }
    this.alive = false;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.ping();
  }

  /** Stops delivering, sends a close frame, and terminates if it cannot be flushed within `closeTimeout`. */
  close(code: CloseCode, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#cleanUp();
    this.#host.context.logger.debug({ code, reason, consumer: this.#principal?.consumer }, 'closing a websocket');
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, closeReason(reason));
    this.#killTimer = setTimeout(() => this.ws.terminate(), this.#host.options.closeTimeout);
    this.#killTimer.unref();
  }

  #cleanUp(): void {
    this.#closing = true;
    this.#clearTimers();
    for (const subscription of this.#subscriptions ?? []) this.#cancel(subscription);
    this.#subscriptions = undefined;
    this.#queued = undefined;
  }

  #clearTimers(): void {
    clearTimeout(this.#authTimer);
    clearTimeout(this.#expiryTimer);
    this.#authTimer = this.#expiryTimer = undefined;
  }

  /** Handles one frame from the client. */
  receive(data: Buffer, isBinary: boolean): void {
    if (this.#closing) return;
    this.alive = true;
    if (this.#authenticating) {
      this.#queued ??= [];
      if (this.#queued.length >= maxMessagesWhileAuthenticating) return void this.close(CloseCode.BadMessage, 'too many messages before ready');
      this.#queued.push([data, isBinary]);
      return;
    }
    const parsed = parseClientMessage(data, isBinary);
    if (!parsed.ok) return void this.close(CloseCode.BadMessage, parsed.reason);
    const message = parsed.message;
    switch (message.type) {
      case 'ping':
        return void this.send(serverMessage.pong());
      case 'pong':
        return;
      case 'auth':
        return void this.#authenticate(message.token);
    }
    if (!this.#principal) return void this.close(CloseCode.Unauthorized, `${message.type} before auth: send auth {token} first`);
    switch (message.type) {
      case 'subscribe':
        return void this.#subscribe(message, this.#principal).catch((error: unknown) => {
          this.#host.context.logger.error({ err: error }, 'subscribing failed');
        });
      case 'unsubscribe': {
        const subscription = this.#find(message.id);
        if (!subscription) return void this.#error('unknown-subscription', `no subscription "${message.id}" on this connection`, message.id);
        this.#remove(subscription);
        return;
      }
      case 'ack':
        return void this.#ack(message);
    }
  }

  /** Authenticates, or refreshes the credential of an authenticated connection. Later messages wait for it. */
  async #authenticate(token: string): Promise<void> {
    const work = (async () => {
      let principal: Principal;
      try {
        principal = await this.#host.context.authenticate(token);
      } catch (error) {
        if (!(error instanceof HeraldError)) this.#host.context.logger.error({ err: error }, 'authenticating a websocket failed');
        return this.close(CloseCode.Unauthorized, error instanceof HeraldError ? error.message : 'the token could not be checked');
      }
      if (this.#closing) return;
      const previous = this.#principal;
      if (previous) {
        if (previous.role !== principal.role || previous.consumer !== principal.consumer) {
          return this.close(CloseCode.Forbidden, 'a refreshed token must be for the same consumer');
        }
        const open = (this.#subscriptions ?? []).flatMap((subscription) => subscription.patterns);
        if (outsideScope(principal.types, open).length > 0) {
          return this.close(CloseCode.Forbidden, "the refreshed token's types do not cover the open subscriptions");
        }
      }
      // The connection counts against the credential it now uses (a refreshed token is another one).
      if (previous?.keyId !== principal.keyId) {
        const release = this.#host.context.connections.acquire(principal);
        if (!release) return this.close(CloseCode.TryAgainLater, tooManyConnections);
        this.#release?.();
        this.#release = release;
      }
      this.#authenticated(principal);
    })();
    this.#authenticating = work;
    await work;
    this.#authenticating = undefined;
    const queued = this.#queued ?? [];
    this.#queued = undefined;
    for (const [data, isBinary] of queued) this.receive(data, isBinary);
  }

  #authenticated(principal: Principal): void {
    this.#principal = principal;
    this.#clearTimers();
    if (principal.expiresAt !== undefined) {
      const left = Math.max(0, Date.parse(principal.expiresAt) - Date.now());
      this.#expiryTimer = setTimeout(() => this.close(CloseCode.Unauthorized, 'the stream token expired: send auth with a new token before it does'), Math.min(left, maxTimer));
      this.#expiryTimer.unref();
    }
    this.send(serverMessage.ready(principal.consumer, principal.expiresAt));
  }

  #find(id: string): ClientSubscription | undefined {
    return this.#subscriptions?.find((subscription) => subscription.id === id);
  }

  #cancel(subscription: ClientSubscription): void {
    subscription.cancelled = true;
    this.#host.live.delete(subscription);
  }

  #remove(subscription: ClientSubscription): void {
    this.#cancel(subscription);
    const list = this.#subscriptions;
    if (list) list.splice(list.indexOf(subscription), 1);
  }

  async #subscribe(message: SubscribeMessage, principal: Principal): Promise<void> {
    const { id } = message;
    if (this.#find(id)) return this.close(CloseCode.DuplicateSubscription, `subscription id "${id}" is already in use`);
    if (this.subscriptionCount >= this.#host.options.maxSubscriptions) {
      return this.#error('too-many-subscriptions', `a connection may hold ${this.#host.options.maxSubscriptions} subscriptions`, id);
    }
    // Taken at once, so a duplicate id sent while this one is looked up or replayed is caught.
    const placeholder = new ClientSubscription(id, this, [], undefined);
    // A literal, not push() on an empty list, which would reserve room for 17.
    let list = this.#subscriptions;
    if (list) list.push(placeholder);
    else list = this.#subscriptions = [placeholder];
    const resolved = await this.#resolveSubscription(message, principal, placeholder);
    if (this.#subscriptions !== list || placeholder.cancelled) return;
    const index = list.indexOf(placeholder);
    if (typeof resolved === 'string') {
      list.splice(index, 1);
      return;
    }
    const subscription = resolved;
    list[index] = subscription;

    // A durable subscription resumes from its stored cursor, which `#resolveSubscription` put in `position`.
    const after = message.after ?? (subscription.durable !== undefined ? subscription.position : undefined);
    if (after === undefined) {
      subscription.position = this.#host.context.bus.latest;
    } else {
      subscription.position = after;
      try {
        const feed = await openEventFeed(
          this.#host.context,
          // The feed replays with its own filter; `subscription.wants` then decides (a durable one's matcher).
          {
            types: subscription.durable !== undefined ? ['**'] : subscription.patterns,
            visibleTo: subscription.visibleTo,
            after,
            batchSize: replayBatchSize,
            drained: () => this.#drained(subscription),
          },
          subscription,
        );
        // The hand-over from the feed to the transport's bus listener happens here, between two bus batches.
        feed.close();
        subscription.position = Math.max(subscription.position, feed.position);
      } catch (error) {
        if (subscription.cancelled) return;
        this.#host.context.logger.error({ err: error }, 'opening an event feed failed');
        this.#remove(subscription);
        this.#error('unavailable', 'the log could not be read; subscribe again', id);
        return;
      }
      if (subscription.cancelled) return;
    }
    subscription.live = true;
    this.#host.live.add(subscription);
    this.send(serverMessage.subscribed(id, subscription.position));
  }

  /**
   * Checks a subscribe message against the principal and the stored subscription; answers an
   * `error` and returns its code when it is refused. A durable subscription comes back with its cursor as `position`.
   */
  async #resolveSubscription(message: SubscribeMessage, principal: Principal, placeholder: ClientSubscription): Promise<ClientSubscription | ErrorCode> {
    const refuse = (code: ErrorCode, text: string): ErrorCode => {
      if (!placeholder.cancelled) this.#error(code, text, message.id);
      return code;
    };
    if (message.subscription === undefined) {
      const patterns = message.types ?? [];
      const outside = outsideScope(principal.types, patterns);
      if (outside.length > 0) return refuse('forbidden', `the token does not allow ${outside.join(', ')}`);
      const known = this.#host.context.catalog.list().map((info) => info.name);
      const unknown = patterns.filter((pattern) => !known.some((name) => patternMatches(pattern, name)));
      if (unknown.length > 0) return refuse('unknown-event-type', `${unknown.join(', ')} matches no event type in the catalog`);
      return new ClientSubscription(message.id, this, patterns, visibleTo(principal));
    }
    const durable = await this.#host.context.subscriptions.get(message.subscription);
    if (!durable || !canAccess(principal, durable)) return refuse('subscription-not-found', `no subscription "${message.subscription}" for this consumer`);
    if (durable.transport !== this.#host.name) {
      return refuse('wrong-transport', `subscription "${durable.id}" is for transport "${durable.transport}", not "${this.#host.name}"`);
    }
    const outside = outsideScope(principal.types, durable.types);
    if (outside.length > 0) return refuse('forbidden', `the token does not allow ${outside.join(', ')}`);
    const subscription = new ClientSubscription(message.id, this, durable.types, durable.consumer, durable.id, principal.types);
    subscription.position = durable.cursor;
    return subscription;
  }

  cork(): void {
    this.ws.cork();
  }

  uncork(): void {
    this.ws.uncork();
  }

  /** Sends one event on a subscription; false when nothing more should be sent. */
  sendEvent(subscription: ClientSubscription, event: HeraldEvent): boolean {
    // A replay waits for the buffer to drain before each page, so its pages may go over the limit.
    const sent = this.send(this.#host.frames.frame(subscription.id, event), !subscription.live);
    this.#host.context.metrics.delivered(sent ? 'delivered' : 'dropped', Date.now() - Date.parse(event.time));
    return sent;
  }

  #ack({ id, seq }: AckMessage): void {
    const subscription = this.#find(id);
    if (!subscription) return void this.#error('unknown-subscription', `no subscription "${id}" on this connection`, id);
    if (subscription.durable === undefined) return void this.#error('not-durable', `subscription "${id}" is not attached to a durable subscription`, id);
    if (seq > subscription.position) return void this.#error('ack-ahead', `seq ${seq} has not been delivered on "${id}"`, id);
    this.#host.cursors.advance(subscription.durable, seq);
  }

  #error(code: ErrorCode, message: string, id?: string): void {
    this.send(serverMessage.error(code, message, id));
  }

  /**
   * Resolves once the send buffer is under half its limit: a replay reads its next page then.
   * Rejects when the subscription is gone, which ends its replay.
   */
  async #drained(subscription: ClientSubscription): Promise<void> {
    const threshold = this.#host.options.maxBufferedAmount / 2;
    while (!subscription.cancelled && this.ws.bufferedAmount > threshold) await new Promise((resolve) => setTimeout(resolve, drainPollInterval));
    if (subscription.cancelled) throw new Error('the subscription ended during its replay');
  }

  /**
   * Sends a text frame; closes with 4429 when the send buffer goes over its limit (unless `lenient`).
   * False when nothing more should be sent.
   */
  send(data: string | Buffer, lenient = false): boolean {
    if (this.#closing || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(data, textFrame);
    if (!lenient && this.ws.bufferedAmount > this.#host.options.maxBufferedAmount) {
      this.close(CloseCode.TooSlow, 'too slow: the send buffer is over its limit');
      return false;
    }
    return true;
  }
}
