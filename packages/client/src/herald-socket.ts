/**
 * `HeraldSocket`: a client for Herald's WebSocket protocol `herald.v1`, for Node and browsers. It
 * authenticates, subscribes, reconnects with exponential backoff and full jitter, resumes every
 * subscription from the last `seq` it saw, and acknowledges durable subscriptions. No runtime
 * dependencies: it uses the global `WebSocket` (browsers, Node 22+) or the one you pass (`ws`).
 */

import type { DeliveredEvent } from './delivered-event.js';
import type { EventFilter } from './event-filter.js';
import { type BackoffOptions, ReconnectBackoff } from './reconnect-backoff.js';

const subprotocol = 'herald.v1';

/** An event as it arrives on a HeraldSocket subscription. */
export type SocketEvent<TType extends string = string, TData = unknown> = DeliveredEvent<TType, TData>;

/** True when the event-type pattern `P` matches the type `T` (`*` one segment, a final `**` one or more). */
export type PatternMatches<P extends string, T extends string> = string extends P
  ? true
  : P extends '**'
    ? true
    : P extends `${infer Head}.${infer Rest}`
      ? T extends `${infer TypeHead}.${infer TypeRest}`
        ? Head extends '*' | TypeHead
          ? PatternMatches<Rest, TypeRest>
          : false
        : false
      : T extends `${string}.${string}`
        ? false
        : P extends '*' | T
          ? true
          : false;

/** Every event of the map `TMap` (type name → data) whose type one of `TPatterns` matches. */
export type MatchingEvent<TMap, TPatterns extends string> = string extends keyof TMap
  ? SocketEvent<string, TMap[keyof TMap]>
  : {
      [K in keyof TMap & string]: true extends (TPatterns extends string ? PatternMatches<TPatterns, K> : never) ? SocketEvent<K, TMap[K]> : never;
    }[keyof TMap & string];

/** The part of the WebSocket API HeraldSocket uses: browsers' and `ws`'s both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

/** A WebSocket constructor: `globalThis.WebSocket`, or `WebSocket` from the `ws` package. */
export type WebSocketConstructor = new (url: string, protocols: string | string[]) => WebSocketLike;

/** A credential: an API key or stream token, or a function that returns a fresh one on every connect. */
export type TokenSource = string | (() => string | Promise<string>);

export interface HeraldSocketOptions extends BackoffOptions {
  /** The WebSocket endpoint, e.g. `wss://api.example.com/v1/ws`; `http(s)://` is switched to `ws(s)://`. */
  url: string;
  /** An API key (server side), a stream token, or a function returning a fresh stream token (browsers). */
  token: TokenSource;
  /** @default globalThis.WebSocket */
  WebSocket?: WebSocketConstructor;
  /** A JSON `ping` is sent this often, in ms. @default 25000 */
  pingInterval?: number;
  /**
   * With nothing received for `pingInterval` + this, the connection is taken for dead and replaced, in ms; and the
   * longest `close()` keeps the connection open for the server to take its acks. @default 10000
   */
  pongTimeout?: number;
  /** Durable subscriptions are acknowledged at most this often, in ms. @default 1000 */
  ackInterval?: number;
  /** With a token function, a fresh token is sent this long before the current one expires, in ms. @default 30000 */
  refreshBefore?: number;
  /**
   * The largest message the server takes, in bytes of UTF-8: its `maxPayload` (`websocket({ maxPayload })`).
   * The server says its own in `ready`; from then on the smaller of the two is the limit. A `subscribe()` over
   * it throws a `RangeError` at the call, as the server would close the connection (1009) for it; one made
   * earlier whose message is over it when it is sent (again) ends with an `error` `message-too-big`. The
   * `auth` message goes before `ready`, so against the limit known then (this option, on the first
   * connection): over it, the socket ends. Should a server close a connection with 1009 all the same (one that
   * does not say its limit), the largest `subscribe` sent on it ends with an `error` `message-too-big`, the
   * limit drops below its size, and the socket reconnects with the others.
   * @default 65536 (64 KiB, the server's default)
   */
  maxMessageBytes?: number;
}

/** Options of {@link HeraldSocket.subscribe}; a durable subscription's target takes them too. */
export interface SocketSubscribeOptions {
  /** Start after this `seq` (replayed from the log); reconnections resume from the last `seq` seen. @default the end of the log (live); a durable subscription's stored cursor */
  after?: number;
  /**
   * A payload filter (docs/guides/filters.md): only the events it lets through are received, live and
   * replayed, and again on every resubscription after a reconnect; on a durable subscription, on top of
   * its own filter. A filter the server refuses (an unknown operator or path) is reported as an `error`
   * with code `invalid-filter` and a message naming the path, and that subscription ends; the connection
   * and its other subscriptions go on. @default none: every event of the types
   */
  filter?: EventFilter;
}

/** A subscription made with {@link HeraldSocket.subscribe}. */
export interface SocketSubscription {
  /** The id on the wire (`subscribe {id}`), unique on this socket. */
  readonly id: string;
  /** The durable subscription it is attached to. */
  readonly subscription?: string;
  /** The last `seq` seen on it: where it resumes after a reconnect. */
  readonly lastSeq: number | undefined;
  /** False once unsubscribed, or refused by the server. */
  readonly active: boolean;
  /**
   * Stops handing events over at once. A durable subscription acknowledges first what was handled; right after
   * a reconnect, before the server confirmed it again, the `unsubscribe` waits for the server to take that ack,
   * and while the socket is reconnecting it attaches once more on the next connection to send it.
   */
  unsubscribe(): void;
}

/** What each listener of {@link HeraldSocket.on} receives. */
export interface HeraldSocketEvents {
  /** Authenticated and ready; the subscriptions are being sent again. */
  open: { consumer: string | null };
  /** The connection closed; `reconnecting` tells whether another attempt follows (after `delay` ms). */
  close: { code: number; reason: string; reconnecting: boolean; delay?: number };
  /** The server confirmed a subscription; live events continue after `after`. */
  subscribed: { subscription: SocketSubscription; after: number };
  /**
   * The resume position `after` could not be used as asked. `expired`: it is older than the log keeps, and
   * retention pruned the events between it and `oldest` (the oldest seq the log holds in full); delivery goes
   * on after `after` with what the log still holds. `ahead`: it is past the end of the log; delivery goes on
   * after `after`, the end of the log.
   */
  reset: { subscription: SocketSubscription; reason: string; after: number; oldest?: number };
  /**
   * An `error` from the server, a handler that threw, a token function that failed, or a message over the size
   * limit (`message-too-big`: the server closed the connection with 1009 for a `subscribe`, which ends).
   */
  error: { code: string; message: string; subscription?: SocketSubscription; cause?: unknown };
}

type Listener<K extends keyof HeraldSocketEvents> = (event: HeraldSocketEvents[K]) => void;

/** Close codes after which reconnecting cannot help. 4401 also, unless the token comes from a function. */
const fatalCloseCodes = new Set([1007, 4400, 4403, 4409]);
/** The close code of a message over the server's `maxPayload` (sent by `ws`). */
const messageTooBig = 1009;
/** Subscription errors after which subscribing again cannot help. */
const fatalSubscriptionErrors = new Set([
  'forbidden',
  'unknown-event-type',
  'subscription-not-found',
  'wrong-transport',
  'too-many-subscriptions',
  'invalid-filter',
  'invalid-pattern',
  'invalid-subscribe',
  'message-too-big',
]);
const OPEN = 1;
/** The server's limits on a `subscribe`: patterns in `types`, and characters of a durable subscription's id. */
const maxTypes = 100;
const maxSubscriptionIdLength = 128;
const encoder = new TextEncoder();

/**
 * Where a subscription stands with the server, on the current connection:
 * - `idle`: its `subscribe` is not out: no connection is ready yet, or the server answered `unavailable`;
 * - `subscribing`: its `subscribe` is out, and the server has neither confirmed nor refused it yet;
 * - `confirmed`: the server confirmed it;
 * - `leaving`: ended by the app (`unsubscribe()`, `close()`) with an ack the server could not take yet: its
 *   `subscribe` goes out again when it can, the ack right after it;
 * - `leaving-subscribing`: leaving, with that `subscribe` and ack out: unsubscribed once the server answered the
 *   `subscribe` (by then it has taken the ack);
 * - `ended`: unsubscribed, refused, or the socket closed.
 *
 * The first three are active: their events are handed to the handler.
 */
type EntryState = 'idle' | 'subscribing' | 'confirmed' | 'leaving' | 'leaving-subscribing' | 'ended';

interface Entry {
  handle: SocketSubscription;
  id: string;
  types?: readonly string[];
  subscription?: string;
  filter?: EventFilter;
  handler: (event: SocketEvent) => unknown;
  lastSeq: number | undefined;
  state: EntryState;
  /** Received, not yet handed to the handler. */
  queue: SocketEvent[];
  /** The handler is running (an async handler has not finished). */
  running: boolean;
  /** The last handled `seq` not yet acknowledged (durable only). */
  toAck?: number;
  /**
   * The last `seq` acknowledged since its `subscribe` on the current connection: acknowledged again after the next
   * one if this connection drops or the server answers that `subscribe` `unavailable`, as it may not have been taken.
   */
  acked?: number;
}

type ServerMessage =
  | { type: 'ready'; consumer: string | null; expiresAt?: string; maxPayload?: number }
  | { type: 'subscribed'; id: string; after: number }
  | { type: 'event'; id: string; event: SocketEvent }
  | { type: 'reset'; id: string; reason: string; after: number; oldest?: number }
  | { type: 'error'; id?: string; code: string; message: string }
  | { type: 'ping' }
  | { type: 'pong' };

type ClientMessage =
  | { type: 'auth'; token: string }
  | { type: 'subscribe'; id: string; types?: readonly string[]; subscription?: string; after?: number; filter?: EventFilter }
  | { type: 'unsubscribe'; id: string }
  | { type: 'ack'; id: string; seq: number }
  | { type: 'ping' }
  | { type: 'pong' };

/**
 * A resuming client for herald.v1, typed by an event map (`EventMapOf<typeof eventTypes>` from
 * `@herald/core`, or any `{ 'order.created': OrderData, ... }`):
 *
 * ```ts
 * const socket = new HeraldSocket<Events>({ url: 'wss://api.example.com/v1/ws', token: () => fetchStreamToken() });
 * socket.subscribe(['order.*'], (event) => console.log(event.type, event.data));
 * ```
 */
export class HeraldSocket<TMap = Record<string, unknown>> {
  readonly #url: string;
  readonly #token: TokenSource;
  readonly #WebSocket: WebSocketConstructor;
  readonly #backoff: ReconnectBackoff;
  readonly #pingInterval: number;
  readonly #pongTimeout: number;
  readonly #ackInterval: number;
  readonly #refreshBefore: number;
  /** The `maxMessageBytes` option. */
  readonly #maxMessageBytesOption: number;
  /** The size limit of a message: the option, or the server's `maxPayload` when lower; lowered when the server closes a connection with 1009. */
  #maxMessageBytes: number;
  /** Where `#maxMessageBytes` comes from, for the errors that quote it. */
  #maxMessageBytesSource = 'maxMessageBytes';
  /** The largest message sent on the current connection, and the subscription when it was a `subscribe`. */
  #largestSent?: { bytes: number; type: string; entry?: Entry };
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Map<keyof HeraldSocketEvents, Set<(event: never) => void>>();
  #ws?: WebSocketLike;
  #ready = false;
  #closed = false;
  /** Why the socket closed when the server closed it for good: its close code and reason. */
  #closedBy?: string;
  #nextId = 1;
  #lastReceived = 0;
  #reconnectTimer?: ReturnType<typeof setTimeout>;
  #pingTimer?: ReturnType<typeof setInterval>;
  #ackTimer?: ReturnType<typeof setInterval>;
  #refreshTimer?: ReturnType<typeof setTimeout>;
  /** After `close()`, the longest the connection stays open for the answers that acks wait for. */
  #closingTimer?: ReturnType<typeof setTimeout>;

  constructor(options: HeraldSocketOptions) {
    const Constructor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Constructor) throw new TypeError('HeraldSocket: no global WebSocket here; pass one, e.g. { WebSocket } from "ws"');
    this.#WebSocket = Constructor;
    this.#url = options.url.replace(/^http(s?):/i, 'ws$1:');
    this.#token = options.token;
    this.#backoff = new ReconnectBackoff(options);
    this.#pingInterval = options.pingInterval ?? 25_000;
    this.#pongTimeout = options.pongTimeout ?? 10_000;
    this.#ackInterval = options.ackInterval ?? 1_000;
    this.#refreshBefore = options.refreshBefore ?? 30_000;
    this.#maxMessageBytesOption = this.#maxMessageBytes = options.maxMessageBytes ?? 65_536;
    if (!(this.#maxMessageBytes > 0)) throw new TypeError(`HeraldSocket: maxMessageBytes must be a positive number of bytes, not ${options.maxMessageBytes}`);
    this.#connect();
  }

  /** True while authenticated on an open connection, until `close()`. */
  get ready(): boolean {
    return this.#ready && !this.#closed;
  }

  /**
   * Subscribes to event types and patterns (`order.*`, `order.**`), from now or after `options.after`;
   * or, with `{ subscription }`, attaches to a durable `websocket` subscription, which resumes from its
   * stored cursor and is acknowledged as events are handled. Handlers run in `seq` order, one at a
   * time per subscription (an async handler is awaited); each event reaches them once. With
   * `filter`, only the events a payload filter lets through: `{ filter: { 'data.total': { $gte: 1000 } } }`.
   *
   * Throws a `TypeError` for what the server would refuse in the form (no types or over 100, an `after`
   * that is not a whole number from 0, a durable subscription id over 128 characters), and an `Error` once
   * the socket is closed: by `close()`, or by the server for good (the message gives its code and reason).
   * Throws a `RangeError` for a `subscribe` message over `maxMessageBytes`, or over the server's `maxPayload`
   * once its `ready` said a smaller one (the message gives its size and the limit), counting the longest
   * `after` a resubscription may carry; the socket and its other subscriptions go on.
   */
  subscribe<const TTypes extends readonly string[]>(
    types: TTypes,
    handler: (event: MatchingEvent<TMap, TTypes[number]>) => unknown,
    options?: SocketSubscribeOptions,
  ): SocketSubscription;
  subscribe(
    target: { subscription: string } & SocketSubscribeOptions,
    handler: (event: MatchingEvent<TMap, '**'>) => unknown,
  ): SocketSubscription;
  subscribe(
    target: readonly string[] | ({ subscription: string } & SocketSubscribeOptions),
    handler: (event: never) => unknown,
    options: SocketSubscribeOptions = {},
  ): SocketSubscription {
    if (this.#closed) throw new Error(`HeraldSocket: subscribe() after ${this.#closedBy ?? 'close()'}`);
    const durable = 'subscription' in target ? target : undefined;
    const { after, filter } = durable ?? options;
    checkSubscribe(target, after, filter);
    const id = `s${this.#nextId++}`;
    const entry: Entry = {
      id,
      ...(durable ? { subscription: durable.subscription } : { types: [...(target as readonly string[])] }),
      // A copy: the filter sent again after a reconnect is the one given here.
      ...(filter !== undefined ? { filter: JSON.parse(JSON.stringify(filter)) as EventFilter } : {}),
      handler: handler as (event: SocketEvent) => unknown,
      lastSeq: after,
      state: 'idle',
      queue: [],
      running: false,
      handle: undefined as unknown as SocketSubscription,
    };
    const bytes = utf8Bytes(JSON.stringify(subscribeMessage(entry, Number.MAX_SAFE_INTEGER)));
    if (bytes > this.#maxMessageBytes) {
      throw new RangeError(`HeraldSocket: subscribe() makes a message of ${this.#tooBig(bytes)}: the server would close the connection (1009); make its filter or types smaller, or split it`);
    }
    entry.handle = {
      id,
      ...(durable ? { subscription: durable.subscription } : {}),
      get lastSeq() {
        return entry.lastSeq;
      },
      get active() {
        return isActive(entry);
      },
      unsubscribe: () => this.#unsubscribe(entry),
    };
    this.#entries.set(id, entry);
    if (this.#ready) this.#sendSubscribe(entry);
    return entry.handle;
  }

  /** Listens for `open`, `close`, `subscribed`, `reset` and `error`; returns a function that stops listening. */
  on<K extends keyof HeraldSocketEvents>(type: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener as (event: never) => void);
    return () => set.delete(listener as (event: never) => void);
  }

  /**
   * Acknowledges what was handled, closes the connection and stops reconnecting. A durable subscription whose
   * `subscribe` the server has not answered yet (just after a reconnect), or answered `unavailable`, is
   * acknowledged all the same, right after that `subscribe` (sent again at once for the latter): the connection
   * stays open until the server has answered it, for at most `pongTimeout`. What was handled while no
   * connection was open (between two) is not acknowledged: it comes again on the next attach.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    for (const entry of this.#entries.values()) {
      // An ack waiting for the server's answer to a `subscribe` makes it leave, as unsubscribe() does.
      if (entry.state !== 'confirmed' && entry.toAck !== undefined) this.#unsubscribe(entry);
      // Answered `unavailable` on this connection: subscribed again now rather than initialDelay later.
      if (entry.state === 'leaving' && this.#ready) this.#sendSubscribe(entry);
      if (entry.state === 'confirmed' || entry.state === 'leaving-subscribing') this.#sendAck(entry);
      if (entry.state === 'leaving-subscribing') continue;
      entry.state = 'ended';
      this.#entries.delete(entry.id);
    }
    this.#emit('close', { code: 1000, reason: 'client closed', reconnecting: false });
    this.#closeWhenAnswered();
  }

  /** After `close()`: closes the connection once no ack waits for an answer, or after `pongTimeout`. */
  #closeWhenAnswered(): void {
    if (this.#entries.size > 0) {
      this.#closingTimer ??= setTimeout(() => {
        this.#entries.clear();
        this.#closeWhenAnswered();
      }, this.#pongTimeout);
      return;
    }
    const ws = this.#ws;
    this.#drop();
    if (ws) ws.close(1000, 'client closed');
  }

  #emit<K extends keyof HeraldSocketEvents>(type: K, event: HeraldSocketEvents[K]): void {
    for (const listener of this.#listeners.get(type) ?? []) {
      try {
        (listener as Listener<K>)(event);
      } catch {
        // A listener's failure is its own; the socket goes on.
      }
    }
  }

  #connect(): void {
    let ws: WebSocketLike;
    try {
      ws = new this.#WebSocket(this.#url, subprotocol);
    } catch (error) {
      this.#emit('error', { code: 'connect-failed', message: String(error), cause: error });
      return void this.#scheduleReconnect(1006, 'could not connect');
    }
    this.#ws = ws;
    this.#largestSent = undefined;
    this.#lastReceived = Date.now();
    ws.onopen = () => void this.#authenticate(ws);
    ws.onmessage = ({ data }: { data: unknown }) => {
      if (ws !== this.#ws || typeof data !== 'string') return;
      this.#lastReceived = Date.now();
      let message: ServerMessage;
      try {
        message = JSON.parse(data) as ServerMessage;
      } catch {
        return;
      }
      this.#receive(message);
    };
    ws.onclose = ({ code, reason }: { code: number; reason: string }) => {
      if (ws !== this.#ws) return;
      this.#drop();
      if (this.#closed) return;
      if (code === messageTooBig) return void this.#closedTooBig(reason);
      this.#scheduleReconnect(code, reason);
    };
    ws.onerror = () => {};
  }

  async #authenticate(ws: WebSocketLike): Promise<void> {
    let token: string;
    try {
      token = typeof this.#token === 'string' ? this.#token : await this.#token();
    } catch (error) {
      if (ws !== this.#ws) return;
      this.#emit('error', { code: 'token-failed', message: `the token function failed: ${String(error)}`, cause: error });
      this.#abandon(4000, 'no token');
      return;
    }
    if (ws !== this.#ws) return;
    const bytes = this.#send({ type: 'auth', token });
    if (bytes === undefined) return;
    // Sending it again cannot help: a token function gives tokens of one kind.
    const message = `the auth message is ${this.#tooBig(bytes)}`;
    this.#emit('error', { code: 'message-too-big', message });
    this.#drop();
    ws.close(1000, 'auth message too big');
    this.#end(1000, 'auth message too big', `${message}, so it was not sent`);
  }

  #receive(message: ServerMessage): void {
    switch (message.type) {
      case 'ready':
        return void this.#onReady(message);
      case 'subscribed': {
        const entry = this.#entries.get(message.id);
        if (!entry) return;
        if (isLeaving(entry)) return void this.#detach(entry);
        entry.state = 'confirmed';
        if (entry.lastSeq === undefined || message.after > entry.lastSeq) entry.lastSeq = message.after;
        return void this.#emit('subscribed', { subscription: entry.handle, after: message.after });
      }
      case 'event': {
        const entry = this.#entries.get(message.id);
        if (entry && isLeaving(entry)) return void this.#detach(entry);
        if (!entry || !isActive(entry) || (entry.lastSeq !== undefined && message.event.seq <= entry.lastSeq)) return;
        entry.lastSeq = message.event.seq;
        return void this.#handle(entry, message.event);
      }
      case 'reset': {
        const entry = this.#entries.get(message.id);
        if (!entry) return;
        if (isLeaving(entry)) return void this.#detach(entry);
        entry.lastSeq = message.after;
        const { reason, after, oldest } = message;
        return void this.#emit('reset', { subscription: entry.handle, reason, after, ...(oldest !== undefined ? { oldest } : {}) });
      }
      case 'error':
        return void this.#onError(message.code, message.message, message.id);
      case 'ping':
        return void this.#send({ type: 'pong' });
    }
  }

  #onReady({ consumer, expiresAt, maxPayload }: Extract<ServerMessage, { type: 'ready' }>): void {
    // Each server says its own limit: one restarted with a higher one, or another node, takes larger messages again.
    if (typeof maxPayload === 'number' && maxPayload > 0) {
      const lower = maxPayload < this.#maxMessageBytesOption;
      this.#maxMessageBytes = lower ? maxPayload : this.#maxMessageBytesOption;
      this.#maxMessageBytesSource = lower ? "the server's maxPayload" : 'maxMessageBytes';
    }
    const firstReady = !this.#ready;
    this.#ready = true;
    this.#backoff.reset();
    clearTimeout(this.#refreshTimer);
    if (expiresAt !== undefined && typeof this.#token === 'function') {
      const left = Date.parse(expiresAt) - Date.now();
      const ws = this.#ws;
      this.#refreshTimer = setTimeout(() => void (ws && this.#authenticate(ws)), Math.max(0, left - this.#refreshBefore, left / 2));
    }
    if (!firstReady) return;
    this.#emit('open', { consumer });
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(() => this.#heartbeat(), this.#pingInterval);
    clearInterval(this.#ackTimer);
    this.#ackTimer = setInterval(() => this.#flushAcks(), this.#ackInterval);
    // An `open` listener may have subscribed, or closed, already: those subscribes are out.
    for (const entry of this.#entries.values()) if (isUnsent(entry)) this.#sendSubscribe(entry);
  }

  #onError(code: string, message: string, id: string | undefined): void {
    const entry = id === undefined ? undefined : this.#entries.get(id);
    if (entry && fatalSubscriptionErrors.has(code)) {
      // The server dropped the subscription, or never made it, for good.
      entry.state = 'ended';
      this.#forget(entry);
    } else if (entry && code === 'unavailable') {
      // It did not make it this time: subscribed again in a moment, unless a new connection or close() did it first.
      subscribeLost(entry);
      setTimeout(() => {
        if (this.#entries.get(entry.id) === entry && isUnsent(entry) && this.#ready) this.#sendSubscribe(entry);
      }, this.#backoff.initialDelay);
    } else if (entry?.state === 'leaving-subscribing') {
      // An error of its own once attached (`ack-ahead`): the server has judged the ack. One left `leaving` waits on
      // for its next `subscribe`: an error then is about the last one (its ack came too late), whose ack was not taken.
      this.#detach(entry);
    }
    this.#emit('error', { code, message, ...(entry ? { subscription: entry.handle } : {}) });
  }

  /** Sends the `subscribe` of `entry`; one that is leaving acknowledges right after it, which the server takes before `subscribed`. */
  #sendSubscribe(entry: Entry): void {
    const bytes = this.#send(subscribeMessage(entry, entry.lastSeq), entry);
    if (bytes !== undefined) {
      return void this.#onError('message-too-big', `the subscribe message of ${entry.id} is ${this.#tooBig(bytes)}; the subscription ended`, entry.id);
    }
    entry.state = entry.state === 'leaving' ? 'leaving-subscribing' : 'subscribing';
    if (entry.state === 'leaving-subscribing') this.#sendAck(entry);
  }

  #handle(entry: Entry, event: SocketEvent): void {
    entry.queue.push(event);
    if (!entry.running) this.#drain(entry);
  }

  /** Hands queued events to the handler in order; an async handler is awaited before the next. */
  #drain(entry: Entry): void {
    entry.running = true;
    for (let event = entry.queue.shift(); event && isActive(entry); event = entry.queue.shift()) {
      let result: unknown;
      try {
        result = entry.handler(event);
      } catch (error) {
        this.#handlerFailed(entry, event, error);
      }
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
        const handled = event;
        (result as PromiseLike<unknown>)
          .then(undefined, (error: unknown) => this.#handlerFailed(entry, handled, error))
          .then(() => {
            this.#handled(entry, handled);
            this.#drain(entry);
          });
        return;
      }
      this.#handled(entry, event);
    }
    entry.queue.length = 0;
    entry.running = false;
  }

  #handled(entry: Entry, event: SocketEvent): void {
    if (entry.subscription !== undefined) entry.toAck = event.seq;
  }

  #handlerFailed(entry: Entry, event: SocketEvent, error: unknown): void {
    this.#emit('error', { code: 'handler-failed', message: `the handler of ${entry.id} threw on seq ${event.seq}`, subscription: entry.handle, cause: error });
  }

  #flushAcks(): void {
    if (!this.#ready) return;
    for (const entry of this.#entries.values()) if (entry.state === 'confirmed') this.#sendAck(entry);
  }

  /** Sends the ack `entry` has waiting, on the current connection, which the server has its `subscribe` on. */
  #sendAck(entry: Entry): void {
    if (entry.toAck === undefined) return;
    this.#send({ type: 'ack', id: entry.id, seq: entry.toAck });
    entry.acked = entry.toAck;
    entry.toAck = undefined;
  }

  /**
   * Ends `entry` for the app. An ack that waits for the server to answer its `subscribe` (it reconnected) goes
   * first: sent now when the `subscribe` is out (the server takes it before `subscribed`), else right after the
   * `subscribe` on the next connection; `unsubscribe` follows the answer. An `unsubscribe` sent at once could
   * reach a server still looking the subscription up, which forgets the ack with it.
   */
  #unsubscribe(entry: Entry): void {
    if (!isActive(entry)) return;
    if (entry.state === 'confirmed' || entry.toAck === undefined) return void this.#detach(entry);
    entry.state = entry.state === 'subscribing' ? 'leaving-subscribing' : 'leaving';
    if (entry.state === 'leaving-subscribing') this.#sendAck(entry);
  }

  /** Forgets `entry` after it acknowledged what it has waiting, and unsubscribes it where the server holds it. */
  #detach(entry: Entry): void {
    const { state } = entry;
    entry.state = 'ended';
    if (state === 'confirmed') this.#sendAck(entry);
    if (state === 'confirmed' || state === 'subscribing' || state === 'leaving-subscribing') this.#send({ type: 'unsubscribe', id: entry.id });
    this.#forget(entry);
  }

  #forget(entry: Entry): void {
    this.#entries.delete(entry.id);
    if (this.#closed && this.#entries.size === 0) this.#closeWhenAnswered();
  }

  #heartbeat(): void {
    if (Date.now() - this.#lastReceived > this.#pingInterval + this.#pongTimeout) return void this.#abandon(4000, 'no answer to ping');
    this.#send({ type: 'ping' });
  }

  /** Gives up on the current connection (it may be dead without knowing it) and reconnects. */
  #abandon(code: number, reason: string): void {
    const ws = this.#ws;
    this.#drop();
    try {
      ws?.close(code, reason);
    } catch {
      // Closing a socket that never opened can throw; it is being replaced either way.
    }
    this.#scheduleReconnect(code, reason);
  }

  /** Forgets the current connection and its timers. */
  #drop(): void {
    const ws = this.#ws;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      // `ws` emits an error when a connecting socket is closed; with no listener that would throw.
      ws.onerror = () => {};
    }
    this.#ws = undefined;
    this.#ready = false;
    // After close(), nothing waits for another connection.
    if (this.#closed) this.#entries.clear();
    for (const entry of this.#entries.values()) subscribeLost(entry);
    clearInterval(this.#pingTimer);
    clearInterval(this.#ackTimer);
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#closingTimer);
  }

  #scheduleReconnect(code: number, reason: string): void {
    if (this.#closed) return;
    const fatal = fatalCloseCodes.has(code) || (code === 4401 && typeof this.#token === 'string');
    if (fatal) return void this.#end(code, reason, `the server closed the connection for good: ${closeText(code, reason)}`);
    const delay = this.#backoff.next();
    this.#emit('close', { code, reason, reconnecting: true, delay });
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  /**
   * The server closed the connection with 1009: a message was over its limit, so the largest one sent on the
   * connection is, whichever it was, and the limit becomes one byte less than that one. A `subscribe` ends, and
   * the others are sent again on a new connection; the `auth` message would be sent again as it is, so then the
   * socket ends.
   */
  #closedTooBig(reason: string): void {
    const largest = this.#largestSent;
    const close = `${closeText(messageTooBig, reason)} (message too big)`;
    if (!largest?.entry) {
      const after = largest ? ` after its ${largest.type} message of ${largest.bytes} bytes` : '';
      return void this.#end(messageTooBig, reason, `the server closed the connection for good: ${close}${after}`);
    }
    const { bytes, entry } = largest;
    this.#maxMessageBytes = bytes - 1;
    this.#maxMessageBytesSource = `the server closed a connection with 1009 after a subscribe of ${bytes} bytes`;
    if (isActive(entry)) {
      const message = `the server closed the connection with ${close} after the subscribe of ${entry.id}, ${bytes} bytes: over its limit, which is lower than maxMessageBytes; the subscription ended, the others are sent again`;
      this.#onError('message-too-big', message, entry.id);
    }
    this.#scheduleReconnect(messageTooBig, reason);
  }

  /** Stops for good once the connection is gone: nothing reconnects, and `subscribe()` throws naming `closedBy`. */
  #end(code: number, reason: string, closedBy: string): void {
    this.#closed = true;
    this.#closedBy = closedBy;
    clearTimeout(this.#reconnectTimer);
    for (const entry of this.#entries.values()) entry.state = 'ended';
    this.#emit('close', { code, reason, reconnecting: false });
  }

  /** `N bytes, over the limit of M bytes (where M comes from)`, for the errors about a message of `bytes`. */
  #tooBig(bytes: number): string {
    return `${bytes} bytes, over the limit of ${this.#maxMessageBytes} bytes (${this.#maxMessageBytesSource})`;
  }

  /**
   * Sends `message` on the open connection, and remembers it (with `entry`, its subscription) if it is the largest
   * so far. One over the size limit is not sent: it returns that one's size.
   */
  #send(message: ClientMessage, entry?: Entry): number | undefined {
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN) return;
    const data = JSON.stringify(message);
    const bytes = utf8Bytes(data);
    if (bytes > this.#maxMessageBytes) return bytes;
    if (bytes > (this.#largestSent?.bytes ?? 0)) this.#largestSent = { bytes, type: message.type, ...(entry ? { entry } : {}) };
    ws.send(data);
  }
}

/** Whether `entry` hands its events to its handler: it was neither ended nor left. */
function isActive(entry: Entry): boolean {
  return entry.state === 'idle' || entry.state === 'subscribing' || entry.state === 'confirmed';
}

/** Whether the `subscribe` of `entry` waits to be sent: on the connection's `ready`, or again after `unavailable`. */
function isUnsent(entry: Entry): boolean {
  return entry.state === 'idle' || entry.state === 'leaving';
}

/** Whether `entry` was ended by the app with an ack the server has yet to take. */
function isLeaving(entry: Entry): boolean {
  return entry.state === 'leaving' || entry.state === 'leaving-subscribing';
}

/**
 * The server no longer holds the `subscribe` of `entry`: the connection dropped, or it answered `unavailable`. The
 * acks sent since may not have been taken: they are sent again on the next one.
 */
function subscribeLost(entry: Entry): void {
  if (entry.state === 'leaving-subscribing') entry.state = 'leaving';
  else if (entry.state === 'subscribing' || entry.state === 'confirmed') entry.state = 'idle';
  entry.toAck ??= entry.acked;
  entry.acked = undefined;
}

/** The `subscribe` message of `entry`, resuming after `after`. */
function subscribeMessage(entry: Entry, after: number | undefined): ClientMessage {
  return {
    type: 'subscribe',
    id: entry.id,
    ...(entry.subscription !== undefined ? { subscription: entry.subscription } : { types: entry.types }),
    ...(after !== undefined ? { after } : {}),
    ...(entry.filter !== undefined ? { filter: entry.filter } : {}),
  };
}

/** A message's size as the server counts it against its `maxPayload`: bytes of UTF-8. */
function utf8Bytes(data: string): number {
  return encoder.encode(data).byteLength;
}

/** `1009 "reason"`, or the code alone. */
function closeText(code: number, reason: string): string {
  return `${code}${reason ? ` "${reason}"` : ''}`;
}

/**
 * Throws, at the call, for what the server would refuse in the form of a `subscribe`. The text of patterns and
 * filters is the server's to judge, with its event catalog: it refuses that subscription alone.
 */
function checkSubscribe(target: readonly string[] | { subscription: string }, after: number | undefined, filter: EventFilter | undefined): void {
  const fail = (message: string) => {
    throw new TypeError(`HeraldSocket: subscribe() ${message}`);
  };
  if (!Array.isArray(target)) {
    const { subscription } = target as { subscription: unknown };
    if (typeof subscription !== 'string' || subscription.length === 0 || subscription.length > maxSubscriptionIdLength) {
      fail(`takes the id of a durable subscription, 1 to ${maxSubscriptionIdLength} characters`);
    }
  } else if (target.length === 0 || target.length > maxTypes) fail(`takes 1 to ${maxTypes} event types and patterns, not ${target.length}`);
  else if (target.some((type) => typeof type !== 'string')) fail('takes event types and patterns as strings');
  if (after !== undefined && !(Number.isSafeInteger(after) && after >= 0)) fail(`takes an \`after\` that is a seq, a whole number from 0, not ${String(after)}`);
  if (filter !== undefined && (typeof filter !== 'object' || filter === null || Array.isArray(filter))) fail('takes a `filter` that is an object of paths and conditions');
}
