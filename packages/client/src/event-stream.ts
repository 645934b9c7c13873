import type { DeliveredEvent } from './delivered-event.js';

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
  /** `expired`: the oldest seq the log holds in full; the events before it were pruned. */
  oldest?: number;
}

/** The part of the WHATWG `EventSource` the helper uses: the browser's, or the `eventsource` package's. */
export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: { data?: unknown }) => void): void;
  close(): void;
}

export type EventSourceConstructor = new (url: string, init?: any) => EventSourceLike;

export interface EventStreamOptions {
  /** The Herald server, e.g. `https://api.example.com`. */
  url: string;
  /** Event types and patterns for an ad hoc stream; or give `subscription`. */
  types?: readonly string[];
  /** A durable SSE subscription's id: the server keeps its cursor. */
  subscription?: string;
  /** A stream token (`POST /v1/stream-tokens`), sent as `?access_token=`. */
  token?: string;
  /** Resume after this seq on the first connection; reconnections resume from the last event received. */
  after?: number;
  /** @default '/v1/stream' */
  path?: string;
  /** @default globalThis.EventSource */
  EventSource?: EventSourceConstructor;
  /** The constructor's second argument, e.g. `{ withCredentials: true }`, or the `eventsource` package's `{ fetch }`. */
  init?: unknown;
}

export interface EventStreamHandlers<TEvent> {
  event(event: TEvent): void;
  /** The stream went on live from `latest`: events before it were not replayed. */
  reset?(reset: StreamReset): void;
  /** The stream is open (again). */
  open?(): void;
  /** The connection dropped (the EventSource reconnects by itself) or failed for good (`closed`). */
  error?(info: { closed: boolean }): void;
}

/** An open stream. */
export interface EventStream {
  /** The seq of the last event received. */
  readonly lastSeq: number | undefined;
  readonly source: EventSourceLike;
  close(): void;
}

/** 2 is `EventSource.CLOSED`: failed for good, no more reconnections. */
const closedState = 2;

/**
 * Opens an EventSource on Herald's `/v1/stream` and hands over parsed envelopes; the EventSource
 * reconnects by itself and resumes with `Last-Event-ID`, so nothing is missed or repeated.
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
  const url = new URL(options.path ?? '/v1/stream', options.url);
  if (options.types !== undefined) url.searchParams.set('types', options.types.join(','));
  if (options.subscription !== undefined) url.searchParams.set('subscription', options.subscription);
  if (options.token !== undefined) url.searchParams.set('access_token', options.token);
  if (options.after !== undefined) url.searchParams.set('lastEventId', String(options.after));
  // One `message` listener for every type: patterns cannot be listed as event names.
  url.searchParams.set('named', 'false');

  const source = new Source(url.toString(), options.init);
  let lastSeq = options.after;
  const parse = (data: unknown): unknown => (typeof data === 'string' ? JSON.parse(data) : undefined);
  source.addEventListener('message', ({ data }) => {
    const event = parse(data) as StreamedEventOf<TMap>;
    lastSeq = event.seq;
    handlers.event(event);
  });
  source.addEventListener('reset', ({ data }) => {
    const reset = parse(data) as StreamReset;
    lastSeq = reset.latest;
    handlers.reset?.(reset);
  });
  source.addEventListener('open', () => handlers.open?.());
  source.addEventListener('error', () => handlers.error?.({ closed: source.readyState === closedState }));
  return {
    get lastSeq() {
      return lastSeq;
    },
    source,
    close: () => source.close(),
  };
}
