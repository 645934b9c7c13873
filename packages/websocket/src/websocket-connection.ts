import { IncomingMessage } from 'node:http';
import {
  countDeliveries,
  ForbiddenError,
  HeraldError,
  type HeraldEvent,
  type MatchedBatch,
  type Principal,
  publishedAt,
  RateLimitedError,
  type ResetReason,
  type SharedBatches,
  type StreamEndReason,
  type StreamSession,
  type StreamSessions,
  type StreamSink,
  type StreamSubscription,
  NodeAtCapacityError,
  TooManyConnectionsError,
  type TransportContext,
} from '@herald/core';
import { WebSocket } from 'ws';
import { textPayload } from './shared-frames.js';
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
  /** Encodes the frames of a batch once for every connection that gets the same ones. */
  readonly batches: SharedBatches;
  /** Opens each authenticated connection's session. */
  readonly sessions: StreamSessions;
  /** Holds `stop()` (within `stopTimeout`) until `work` ends: a `subscribe` whose look-up may yet move a cursor. */
  hold(work: Promise<void>): void;
  /** Forgets a closed connection. */
  release(connection: Connection): void;
}

const textFrame = { binary: false } as const;

/**
 * The acks of a durable subscription that arrive while it is looked up, judged once its stored cursor is known, each
 * kept as the highest of its kind (it covers the lower ones): those at or below the `after` its `subscribe` resumes
 * from, where the replay starts, and those past it, which only the cursor may cover.
 */
interface EarlyAcks {
  resumed?: number;
  past?: number;
}

/** What {@link HeraldWebSocket.sendFrames} uses of ws's `Sender`, whose writes keep `bufferedAmount` right. */
interface WsSender {
  /** 0 (DEFAULT): not compressing, not reading a Blob, so nothing is queued before what is written now. */
  _state: number;
  /** False in the middle of a fragmented message. */
  _firstFragment: boolean;
  sendFrame(list: Buffer[], cb?: (error?: Error) => void): void;
}
const senderIdle = 0;
const tooManyConnections = 'this key has too many open connections';
const maxMessagesWhileAuthenticating = 100;
const drainPollInterval = 10;

/** How the session's ends close the connection. */
const endings: Record<StreamEndReason, [CloseCode, string]> = {
  revoked: [CloseCode.Unauthorized, 'the key was revoked'],
  'token-expired': [CloseCode.Unauthorized, 'the stream token expired: send auth with a new token before it does'],
  stopping: [CloseCode.GoingAway, 'the server is stopping'],
};

/** The `error` code of each refusal of a `subscribe`, by the refusing error's code. */
const refusals: Readonly<Record<string, ErrorCode>> = {
  forbidden: 'forbidden',
  'unknown-event-type': 'unknown-event-type',
  'not-found': 'subscription-not-found',
  'wrong-transport': 'wrong-transport',
  'invalid-filter': 'invalid-filter',
  'store-unavailable': 'unavailable',
};

/**
 * The server's WebSocket class (ws's `WebSocket` option): it hands ws's events straight to its
 * connection instead of through listeners, so an idle connection carries no listener table and no
 * closures of its own. Events without a connection (or `close`, which `whenClosed` may wait on)
 * still go to listeners.
 */
export class HeraldWebSocket extends WebSocket {
  connection?: Connection;

  /**
   * Writes whole text frames made by `encodeTextFrame` (`bytes`: `frames` back to back, perhaps the very
   * Buffer other sockets write too) to the socket as they are, in one write. That is what `send` does
   * for each frame once it has built its header, when nothing waits in ws's sender queue and no
   * extension (permessage-deflate) changes the payload; otherwise each frame goes through `send`.
   */
  sendFrames(bytes: Buffer, frames: readonly Buffer[]): void {
    // ws's own sender, a private field: absent from another release of ws, every frame goes through `send`.
    const sender = (this as unknown as { _sender?: WsSender | null })._sender;
    if (sender && sender._state === senderIdle && sender._firstFragment && this.extensions === '') sender.sendFrame([bytes]);
    else for (const frame of frames) this.send(textPayload(frame), textFrame);
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

/** A client speaking herald.v1 on one WebSocket: the wire format of its {@link StreamSession}. */
export class Connection implements StreamSink {
  readonly ws: HeraldWebSocket;
  /** Set until the connection answers a protocol ping. */
  alive = true;
  readonly #host: ConnectionHost;
  /** Once authenticated: whom the connection is for, what it subscribes to, its slot in the per-key limit. */
  #session?: StreamSession;
  #closing = false;
  #authenticating?: Promise<void>;
  /** Until the first `auth` message is answered: the upgrade request, whose address's failed authentications count. */
  #upgrade?: IncomingMessage;
  #queued?: [Buffer, boolean][];
  #authTimer?: NodeJS.Timeout;
  #killTimer?: NodeJS.Timeout;
  #whenClosed?: Promise<void>;
  #isClosed = false;
  /** While corked: the frames of the batch, and whether a replay brought any (the buffer limit waits for its drain). */
  #batch?: Buffer[];
  #batchLenient = false;
  /** Durable subscriptions still being looked up, and the acks that wait for it. */
  readonly #earlyAcks = new Map<StreamSubscription, EarlyAcks>();

  /** @param opened the session, when the upgrade carried a valid `Authorization` header; else the upgrade request. */
  constructor(ws: HeraldWebSocket, host: ConnectionHost, opened: StreamSession | IncomingMessage) {
    this.ws = ws;
    this.#host = host;
    ws.connection = this;
    if (!(opened instanceof IncomingMessage)) this.#authenticated(opened);
    else {
      this.#upgrade = opened;
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
    clearTimeout(this.#killTimer);
    this.#killTimer = undefined;
    this.#host.release(this);
  }

  failed(error: Error): void {
    this.#host.context.logger.debug({ err: error }, 'websocket error');
  }

  get subscriptionCount(): number {
    return this.#session?.subscriptions.length ?? 0;
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
    const consumer = this.#session?.principal.consumer;
    this.#cleanUp();
    this.#host.context.logger.debug({ code, reason, consumer }, 'closing a websocket');
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, closeReason(reason));
    this.#killTimer = setTimeout(() => this.ws.terminate(), this.#host.options.closeTimeout);
    this.#killTimer.unref();
  }

  /** The session ended (revoked, token expired, server stopping). */
  end(reason: StreamEndReason): void {
    this.close(...endings[reason]);
  }

  #cleanUp(): void {
    this.#closing = true;
    clearTimeout(this.#authTimer);
    this.#authTimer = undefined;
    this.#session?.close();
    this.#queued = undefined;
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
    if (!parsed.ok) {
      if (parsed.refused) return void this.#refuse(parsed.refused.id, parsed.refused.code, parsed.reason);
      return void this.close(CloseCode.BadMessage, parsed.reason);
    }
    const message = parsed.message;
    switch (message.type) {
      case 'ping':
        return void this.send(serverMessage.pong());
      case 'pong':
        return;
      case 'auth':
        return void this.#authenticate(message.token);
    }
    const session = this.#session;
    if (!session) return void this.close(CloseCode.Unauthorized, `${message.type} before auth: send auth {token} first`);
    switch (message.type) {
      case 'subscribe':
        return void this.#host.hold(
          this.#subscribe(message, session).catch((error: unknown) => {
            this.#host.context.logger.error({ err: error }, 'subscribing failed');
          }),
        );
      case 'unsubscribe': {
        const subscription = session.find(message.id);
        if (!subscription) return void this.#error('unknown-subscription', `no subscription "${message.id}" on this connection`, message.id);
        subscription.close();
        return;
      }
      case 'ack':
        return void this.#ack(message, session);
    }
  }

  /** Authenticates, or refreshes the credential of an authenticated connection. Later messages wait for it. */
  async #authenticate(token: string): Promise<void> {
    const work = (async () => {
      let principal: Principal;
      try {
        principal = await this.#host.context.authenticate(token, this.#upgrade);
      } catch (error) {
        if (error instanceof RateLimitedError) return this.close(CloseCode.TryAgainLater, error.message);
        if (!(error instanceof HeraldError)) this.#host.context.logger.error({ err: error }, 'authenticating a websocket failed');
        return this.close(CloseCode.Unauthorized, error instanceof HeraldError ? error.message : 'the token could not be checked');
      } finally {
        this.#upgrade = undefined;
      }
      if (this.#closing) return;
      try {
        if (this.#session) this.#session.refresh(principal);
        else this.#session = this.#host.sessions.open(principal);
      } catch (error) {
        if (error instanceof ForbiddenError) return this.close(CloseCode.Forbidden, error.message);
        if (error instanceof TooManyConnectionsError) return this.close(CloseCode.TryAgainLater, tooManyConnections);
        if (error instanceof NodeAtCapacityError) return this.close(CloseCode.TryAgainLater, error.message);
        return this.close(CloseCode.GoingAway, 'the server is stopping');
      }
      this.#authenticated(this.#session);
    })();
    this.#authenticating = work;
    await work;
    this.#authenticating = undefined;
    const queued = this.#queued ?? [];
    this.#queued = undefined;
    for (const [data, isBinary] of queued) this.receive(data, isBinary);
  }

  #authenticated(session: StreamSession): void {
    this.#session = session;
    clearTimeout(this.#authTimer);
    this.#authTimer = undefined;
    session.attach(this);
    const { consumer, expiresAt } = session.principal;
    this.send(serverMessage.ready(consumer, this.#host.options.maxPayload, expiresAt));
  }

  /** A `subscribe` that does not fit but names its `id`: refused alone, once the connection could have made it. */
  #refuse(id: string, code: ErrorCode, reason: string): void {
    const session = this.#session;
    if (!session) this.close(CloseCode.Unauthorized, 'subscribe before auth: send auth {token} first');
    else if (session.find(id)) this.#duplicate(id);
    else this.#error(code, reason, id);
  }

  #duplicate(id: string): void {
    this.close(CloseCode.DuplicateSubscription, `subscription id "${id}" is already in use`);
  }

  async #subscribe(message: SubscribeMessage, session: StreamSession): Promise<void> {
    const { id } = message;
    if (session.find(id)) return this.#duplicate(id);
    if (session.subscriptions.length >= this.#host.options.maxSubscriptions) {
      return this.#error('too-many-subscriptions', `a connection may hold ${this.#host.options.maxSubscriptions} subscriptions`, id);
    }
    // Held by the session at once, so a duplicate id sent while this one is looked up or replayed is caught.
    const subscription = session.subscribe({
      id,
      ...(message.types !== undefined ? { types: message.types } : { subscription: message.subscription }),
      after: message.after,
      filter: message.filter,
    });
    if (subscription.durable !== undefined) this.#earlyAcks.set(subscription, {});
    let early: EarlyAcks | undefined;
    try {
      await subscription.resolve();
    } catch (error) {
      if (subscription.closed) return;
      subscription.close();
      const code = error instanceof HeraldError ? refusals[error.code] : undefined;
      if (code !== undefined) return this.#error(code, (error as HeraldError).message, id);
      this.#host.context.logger.error({ err: error }, 'subscribing failed');
      return this.#error('unavailable', 'the subscription could not be looked up; subscribe again', id);
    } finally {
      early = this.#earlyAcks.get(subscription);
      this.#earlyAcks.delete(subscription);
    }
    if (subscription.closed) return this.#keepResumedAck(subscription, early);
    try {
      // The replay starts at its resume position at once: the early acks are judged from there.
      const started = subscription.start();
      for (const seq of [early?.resumed, early?.past]) if (seq !== undefined) this.#acknowledge(subscription, seq);
      await started;
    } catch (error) {
      if (subscription.closed) return;
      this.#host.context.logger.error({ err: error }, 'replaying the log failed');
      subscription.close();
      return this.#error('unavailable', 'the log could not be read; subscribe again', id);
    }
    if (!subscription.closed) this.send(serverMessage.subscribed(id, subscription.position));
  }

  /** The events that follow go out in one write, at {@link uncork}: the frames of the batch back to back. */
  cork(): void {
    this.#batch = [];
    this.#batchLenient = false;
  }

  uncork(): void {
    const batch = this.#batch;
    this.#batch = undefined;
    if (batch !== undefined && batch.length > 0) this.#sendFrames(this.#host.batches.of(batch), batch, this.#batchLenient);
  }

  /** Sends one event on a subscription; false when nothing more should be sent. */
  deliver(subscription: StreamSubscription, event: HeraldEvent): boolean {
    const { frames, context } = this.#host;
    const frame = frames.frame(subscription.id, event);
    const batch = this.#batch;
    let sent: boolean;
    if (batch === undefined) {
      // A replay waits for the buffer to drain before each page, so its pages may go over the limit.
      sent = this.#sendFrames(frame, [frame], !subscription.live);
    } else {
      sent = !this.#closing;
      if (sent) {
        batch.push(frame);
        if (!subscription.live) this.#batchLenient = true;
      }
    }
    context.metrics.delivered(sent ? 'delivered' : 'dropped', Date.now() - publishedAt(event));
    return sent;
  }

  /** Sends a live batch's events of a subscription: the frames made once for every connection that names its subscription alike, in one write. */
  deliverMatched(subscription: StreamSubscription, batch: MatchedBatch): boolean {
    const { frames, batches, context } = this.#host;
    const { id } = subscription;
    const encoded = batch.shared(id, () => {
      const list = batch.events.map((event) => frames.frame(id, event));
      return { list, bytes: batches.of(list) };
    });
    const sent = this.#sendFrames(encoded.bytes, encoded.list, false);
    countDeliveries(context.metrics, sent ? 'delivered' : 'dropped', batch.publishedAt);
    return sent;
  }

  reset(subscription: StreamSubscription, reason: ResetReason, latest: number, oldest?: number): void {
    this.send(serverMessage.reset(subscription.id, reason, latest, oldest));
  }

  removed(subscription: StreamSubscription): void {
    this.#error('subscription-not-found', 'the subscription was deleted: it receives nothing more', subscription.id);
  }

  #ack({ id, seq }: AckMessage, session: StreamSession): void {
    const subscription = session.find(id);
    if (!subscription) return void this.#error('unknown-subscription', `no subscription "${id}" on this connection`, id);
    if (subscription.durable === undefined) return void this.#error('not-durable', `subscription "${id}" is not attached to a durable subscription`, id);
    const early = this.#earlyAcks.get(subscription);
    if (!early) return void this.#acknowledge(subscription, seq);
    const { after } = subscription;
    if (after !== undefined && seq <= after) early.resumed = Math.max(seq, early.resumed ?? 0);
    else early.past = Math.max(seq, early.past ?? 0);
  }

  /**
   * The client unsubscribed, or the connection closed, while the subscription was looked up: an early ack at or
   * below the `after` it resumed from is the client's word for what it handled, and moves the cursor there (a
   * cursor write only ever moves it forward), no further than the end of the log: an `after` past it would be
   * reset (`ahead`), and a cursor past it would skip the events published next. One past the `after` was never
   * delivered: it moves nothing, and nothing more is said about a subscription that has ended.
   */
  async #keepResumedAck(subscription: StreamSubscription, early: EarlyAcks | undefined): Promise<void> {
    if (early?.resumed !== undefined) await subscription.keepAcknowledged(early.resumed);
  }

  #acknowledge(subscription: StreamSubscription, seq: number): void {
    if (!subscription.acknowledge(seq)) this.#error('ack-ahead', `seq ${seq} is past the cursor and has not been delivered on "${subscription.id}"`, subscription.id);
  }

  #error(code: ErrorCode, message: string, id?: string): void {
    this.send(serverMessage.error(code, message, id));
  }

  /** Resolves once the send buffer is under half its limit (or the subscription is gone): a replay reads its next page then. */
  async drained(subscription: StreamSubscription): Promise<void> {
    const threshold = this.#host.options.maxBufferedAmount / 2;
    while (!subscription.closed && this.ws.bufferedAmount > threshold) await new Promise((resolve) => setTimeout(resolve, drainPollInterval));
  }

  /**
   * Sends a text frame; closes with 4429 when the send buffer goes over its limit (unless `lenient`).
   * False when nothing more should be sent.
   */
  send(data: string | Buffer, lenient = false): boolean {
    if (this.#closing || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(data, textFrame);
    return this.#withinLimit(lenient);
  }

  /** Writes whole frames (`bytes`: `frames` back to back); like {@link send} otherwise. */
  #sendFrames(bytes: Buffer, frames: readonly Buffer[], lenient: boolean): boolean {
    if (this.#closing || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.sendFrames(bytes, frames);
    return this.#withinLimit(lenient);
  }

  #withinLimit(lenient: boolean): boolean {
    if (!lenient && this.ws.bufferedAmount > this.#host.options.maxBufferedAmount) {
      this.close(CloseCode.TooSlow, 'too slow: the send buffer is over its limit');
      return false;
    }
    return true;
  }
}
