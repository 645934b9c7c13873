import type { DeliveredEvent } from './delivered-event.js';
import type { EventFilter } from './event-filter.js';
import { type BackoffOptions, ReconnectBackoff } from './reconnect-backoff.js';
import { passingStatus } from './retry-after.js';

/** An event as it arrives on a Herald stream. */
export type StreamedEvent<TType extends string = string, TData = unknown> = DeliveredEvent<TType, TData>;

/** The events of a catalog `{ 'order.created': { id: string }, ... }`, as a union. */
export type StreamedEventOf<TMap> = { [K in keyof TMap & string]: StreamedEvent<K, TMap[K]> }[keyof TMap & string];

/** The stream could not resume where it was asked to and went on live from `latest`. */
export interface StreamReset {
  /** `expired`: older than the log keeps; `ahead`: past the end of the log. */
  reason: 'ahead' | 'expired';
  /** The stream goes on after this seq. */
  latest: number;
  /**
   * `expired`: the oldest seq the log holds in full. Retention pruned the events between `latest` and it, but
   * for those a type keeps longer or by compaction, which come all the same.
   */
  oldest?: number;
}

/** Why the server ended a stream: its `end` frame. */
export interface StreamEnd {
  reason: 'token-expired' | 'revoked' | 'stopping' | 'deleted';
  message: string;
}

/** The part of the WHATWG `EventSource` the helper uses: the browser's, or the `eventsource` package's. */
export interface EventSourceLike {
  readonly readyState: number;
  /** `code`: the HTTP status of a refused connection, on the `eventsource` package's `error` events. */
  addEventListener(type: string, listener: (event: { data?: unknown; code?: unknown }) => void): void;
  close(): void;
}

export type EventSourceConstructor = new (url: string, init?: any) => EventSourceLike;

/** Options of {@link openEventStream}; the backoff's say how long it waits before a new EventSource, after one gave up (see {@link StreamError}). */
export interface EventStreamOptions extends BackoffOptions {
  /** The Herald server, e.g. `https://api.example.com`. */
  url: string;
  /** Event types and patterns for an ad hoc stream; or give `subscription`. */
  types?: readonly string[];
  /** A durable SSE subscription's id: the server keeps its cursor. */
  subscription?: string;
  /**
   * A stream token (`POST /v1/stream-tokens`), sent as `?access_token=`; or a function that returns a fresh
   * one, called for every stream opened: when a token expires the server ends the stream, and the helper
   * opens a new one with a fresh token that resumes after the last event received. The same happens when
   * the EventSource gives up after a refused reconnection (say a `401` because the token expired while the
   * server was down): see `error`. A token function that throws stops the stream (`tokenError`).
   */
  token?: string | (() => string | Promise<string>);
  /** Resume after this seq on the first connection; reconnections resume from the last event received. */
  after?: number;
  /**
   * A payload filter (docs/guides/filters.md), sent as the URL-encoded JSON `?filter=`: only the events it
   * lets through are streamed, on every resume too; with `subscription`, on top of its own filter. A filter
   * the server refuses (an unknown operator or path) is answered 422, which closes the stream: `error`
   * gets `{ closed: true, status: 422 }` (browsers do not tell the status: see {@link StreamError}).
   * @default none: every event of the types
   */
  filter?: EventFilter;
  /** @default '/v1/stream' */
  path?: string;
  /** @default globalThis.EventSource */
  EventSource?: EventSourceConstructor;
  /** The constructor's second argument, e.g. `{ withCredentials: true }`, or the `eventsource` package's `{ fetch }`. */
  init?: unknown;
}

/**
 * A connection dropped or refused. The EventSource reconnects by itself after a dropped connection or a
 * network error; after an HTTP answer other than a stream it gives up for good, and the helper then opens a
 * new one after `delay` ms (exponential backoff with full jitter, reset by each `open`), resuming after the
 * last event received, with a fresh token from a token function. It does, whatever the credential, after
 * `408`, `429` or a `5xx`; with a token function also after a `401`, or when the status is not known
 * (browsers do not tell it). Any other refusal closes the stream: a `401` with a fixed token or no
 * token, a `403`, a `404` (a deleted durable subscription).
 */
export interface StreamError {
  /** The stream is over: nothing connects again. */
  closed: boolean;
  /** The HTTP status that made the EventSource give up, when it tells it (the `eventsource` package does). */
  status?: number;
  /** The EventSource gave up, and a new one opens after this many ms. */
  delay?: number;
}

export interface EventStreamHandlers<TEvent> {
  event(event: TEvent): void;
  /** The stream went on live from `latest`: events before it were not replayed. */
  reset?(reset: StreamReset): void;
  /** The stream is open (again). */
  open?(): void;
  /** The connection dropped or was refused; `closed` once the stream is over for good. */
  error?(info: StreamError): void;
  /**
   * The server ended the stream. `stopping`: the EventSource reconnects by itself (should it give up, a new
   * one opens, as `error` tells). `token-expired`: with a token function, a new stream opens with a fresh
   * token; with a fixed token the stream is closed, as it is when the credential was `revoked` or the
   * durable subscription `deleted`.
   */
  end?(end: StreamEnd): void;
  /** The token function threw or rejected; the stream is closed (throw to stop it, e.g. once signed out). */
  tokenError?(error: unknown): void;
}

/** An open stream. */
export interface EventStream {
  /** The seq of the last event received. */
  readonly lastSeq: number | undefined;
  /** The EventSource of the stream open now (a new one after a token expired or an EventSource gave up); none while a token function runs for the first stream. */
  readonly source: EventSourceLike | undefined;
  close(): void;
}

/** 2 is `EventSource.CLOSED`: failed for good, no more reconnections. */
const closedState = 2;

/** Whether a new EventSource may get a stream where one was refused with `status` (`undefined`: not told). */
function worthReopening(status: number | undefined, freshToken: boolean): boolean {
  if (status === undefined || status === 401) return freshToken;
  return passingStatus(status);
}

/**
 * Opens an EventSource on Herald's `/v1/stream` and hands over parsed envelopes; the EventSource
 * reconnects by itself and resumes with `Last-Event-ID`, so nothing is missed or repeated. When it gives
 * up for good, a new one opens with backoff, until `close()` or a refusal that cannot change ({@link StreamError}).
 *
 * ```ts
 * const stream = openEventStream<EventMap>({ url, types: ['order.*'], token }, { event: (e) => render(e) });
 * ```
 */
export function openEventStream<TMap = Record<string, unknown>>(
  options: EventStreamOptions,
  handlers: EventStreamHandlers<StreamedEventOf<TMap>>,
): EventStream {
  const Source = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
  if (!Source) throw new Error('No EventSource here: pass one as `EventSource` (e.g. from the eventsource package)');
  const base = new URL(options.path ?? '/v1/stream', options.url);
  if (options.types !== undefined) base.searchParams.set('types', options.types.join(','));
  if (options.subscription !== undefined) base.searchParams.set('subscription', options.subscription);
  if (options.filter !== undefined) base.searchParams.set('filter', JSON.stringify(options.filter));
  // One `message` listener for every type: patterns cannot be listed as event names.
  base.searchParams.set('named', 'false');
  const backoff = new ReconnectBackoff(options);

  let lastSeq = options.after;
  let closed = false;
  let source: EventSourceLike | undefined;
  let reopenTimer: ReturnType<typeof setTimeout> | undefined;
  const parse = (data: unknown): unknown => (typeof data === 'string' ? JSON.parse(data) : undefined);
  const open = (token: string | undefined): EventSourceLike => {
    const url = new URL(base);
    if (token !== undefined) url.searchParams.set('access_token', token);
    if (lastSeq !== undefined) url.searchParams.set('lastEventId', String(lastSeq));
    const opened = new Source(url.toString(), options.init);
    opened.addEventListener('message', ({ data }) => {
      const event = parse(data) as StreamedEventOf<TMap>;
      lastSeq = event.seq;
      handlers.event(event);
    });
    opened.addEventListener('reset', ({ data }) => {
      const reset = parse(data) as StreamReset;
      lastSeq = reset.latest;
      handlers.reset?.(reset);
    });
    opened.addEventListener('end', ({ data }) => {
      const end = parse(data) as StreamEnd;
      if (end.reason !== 'stopping') opened.close();
      handlers.end?.(end);
      if (end.reason === 'token-expired' && typeof options.token === 'function') void connect();
    });
    opened.addEventListener('open', () => {
      backoff.reset();
      handlers.open?.();
    });
    opened.addEventListener('error', ({ code }) => {
      if (opened.readyState !== closedState) return handlers.error?.({ closed: false });
      const status = typeof code === 'number' ? code : undefined;
      const told = status !== undefined ? { status } : {};
      if (closed || !worthReopening(status, typeof options.token === 'function')) return handlers.error?.({ closed: true, ...told });
      const delay = backoff.next();
      handlers.error?.({ closed: false, ...told, delay });
      reopenTimer = setTimeout(() => void connect(), delay);
    });
    return opened;
  };
  const connect = async () => {
    const { token } = options;
    if (closed) return;
    if (typeof token !== 'function') {
      source = open(token);
      return;
    }
    let fresh: string;
    try {
      fresh = await token();
    } catch (error) {
      handlers.tokenError?.(error);
      return;
    }
    if (!closed) source = open(fresh);
  };

  void connect();
  return {
    get lastSeq() {
      return lastSeq;
    },
    get source() {
      return source;
    },
    close: () => {
      closed = true;
      clearTimeout(reopenTimer);
      source?.close();
    },
  };
}
