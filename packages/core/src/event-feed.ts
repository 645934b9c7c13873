import type { HeraldEvent } from './envelope.js';
import type { EventBus } from './event-bus.js';
import { takesEvent } from './subscription.js';
import type { Store } from './store.js';

/** What a feed delivers: the types, who may see them, and where to start. */
export interface EventFeedOptions {
  /** Exact names and patterns. */
  types: readonly string[];
  /** Only events addressed to this consumer or to everyone. @default every event (admin) */
  visibleTo?: string;
  /** Replay the log after this `seq` before going live. @default live only, from now */
  after?: number;
  /** Events read from the log per query while replaying. @default 500 */
  batchSize?: number;
  /** Live events held while the replay is read; past it they are dropped and read from the log instead. @default 10000 */
  holdLimit?: number;
  /** Awaited before each page of the replay is read, so a slow sink can drain first. @default no wait */
  drained?: () => Promise<void>;
}

/** Where a feed's events go. */
export interface EventFeedSink {
  /** Matching events, in `seq` order, each once. */
  events(events: readonly HeraldEvent[]): void;
  /**
   * `after` cannot be resumed from: it is past the end of the log (the log was replaced) or older than
   * the log keeps. The feed goes on live from the end of the log.
   */
  reset(reason: 'ahead' | 'expired', latest: number): void;
}

/** A running feed. */
export interface EventFeed {
  /** The last `seq` handed to the sink (or the start position). */
  readonly position: number;
  close(): void;
}

/** A running feed's handle. A class: V8 keeps an object literal with a getter in slow (dictionary) mode, and a server holds one per client. */
class FeedHandle implements EventFeed {
  readonly #position: () => number;
  constructor(
    position: () => number,
    readonly close: () => void,
  ) {
    this.#position = position;
  }
  get position(): number {
    return this.#position();
  }
}

/**
 * Replays the log from `after`, then hands over to live events with no gap and no duplicate; the
 * WebSocket and SSE transports share it. Live events that arrive while the replay is read are held
 * and handed over after it; anything at or below the last delivered `seq` is dropped, so the race
 * between the replay's reads and new commits cannot repeat or skip an event.
 */
export async function openEventFeed(
  { store, bus }: { store: Store; bus: EventBus },
  options: EventFeedOptions,
  sink: EventFeedSink,
): Promise<EventFeed> {
  const { types, visibleTo } = options;
  const batchSize = options.batchSize ?? 500;
  const holdLimit = options.holdLimit ?? 10_000;
  const wanted = (event: HeraldEvent) => takesEvent(event, types, visibleTo);

  let position = bus.latest;
  let replaying = options.after !== undefined;
  let held: HeraldEvent[] = [];
  let overflowed = false;
  let closed = false;

  const deliver = (events: readonly HeraldEvent[]) => {
    const fresh = events.filter((event) => event.seq > position && wanted(event));
    if (events.length > 0) position = Math.max(position, (events.at(-1) as HeraldEvent).seq);
    if (fresh.length > 0 && !closed) sink.events(fresh);
  };

  const stopListening = bus.onEvents((events) => {
    if (closed) return;
    if (!replaying) return deliver(events);
    if (held.length + events.length > holdLimit) {
      held = [];
      overflowed = true;
    } else held.push(...events);
  });

  const feed: EventFeed = new FeedHandle(
    () => position,
    () => {
      closed = true;
      stopListening();
    },
  );

  if (options.after === undefined) return feed;
  try {
    const { latest, oldest } = await store.bounds();
    if (options.after > latest || (oldest !== null && options.after < oldest - 1)) {
      position = Math.max(latest, bus.latest);
      sink.reset(options.after > latest ? 'ahead' : 'expired', position);
    } else {
      position = options.after;
      do {
        overflowed = false;
        for (;;) {
          if (options.drained) await options.drained();
          if (closed) break;
          const page = await store.read({ after: position, limit: batchSize, types, ...(visibleTo !== undefined ? { visibleTo } : {}) });
          if (closed || page.length === 0) break;
          deliver(page);
        }
      } while (overflowed && !closed);
    }
    replaying = false;
    deliver(held);
    held = [];
    return feed;
  } catch (error) {
    feed.close();
    throw error;
  }
}
