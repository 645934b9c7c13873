import type { EventFeedSink, HeraldEvent } from '@herald/core';
import { patternMatches } from './pattern-cache.js';
import { serverMessage } from './websocket-protocol.js';

/** What a subscription needs from its connection and the transport. */
export interface SubscriptionOwner {
  /** Sends one event on the subscription; false when nothing more should be sent. */
  sendEvent(subscription: ClientSubscription, event: HeraldEvent): boolean;
  send(data: string): boolean;
  /** Holds the frames sent until `uncork()`, which writes them at once. */
  cork(): void;
  uncork(): void;
  /** Whether the durable subscription `id` is active and matches `event` right now. */
  durableMatches(event: HeraldEvent, id: string): boolean;
}

/**
 * One client subscription on a connection: ad hoc (patterns) or attached to a durable
 * subscription. While it replays it is its event feed's sink; once live, the transport's one bus
 * listener offers it every batch. It holds no closures, so an idle subscription is one small object.
 */
export class ClientSubscription implements EventFeedSink {
  /** The last `seq` handed to it (delivered or filtered out): where it continues, and what may be acknowledged. */
  position = 0;
  /** Receiving live events from the transport's bus listener (the replay, if any, is over). */
  live = false;
  cancelled = false;

  /**
   * @param patterns what it was allowed for (a durable subscription's stored types), checked again on a token refresh
   * @param visibleTo only events addressed to this consumer or to everyone; undefined for an admin
   * @param durable the durable subscription it is attached to
   * @param scope a stream token's types, which also limit a durable subscription's events
   */
  constructor(
    readonly id: string,
    readonly owner: SubscriptionOwner,
    readonly patterns: readonly string[],
    readonly visibleTo: string | undefined,
    readonly durable?: string,
    readonly scope?: readonly string[],
  ) {}

  /** Whether `event` goes to the client. */
  wants(event: HeraldEvent): boolean {
    if (this.visibleTo !== undefined && event.consumer !== undefined && event.consumer !== this.visibleTo) return false;
    if (this.durable === undefined) return anyMatches(this.patterns, event.type);
    // The registry's matcher decides, so a change of types or status applies at once.
    return this.owner.durableMatches(event, this.durable) && (this.scope === undefined || anyMatches(this.scope, event.type));
  }

  /** Live delivery: the events of a bus batch after `position`, in order. */
  offer(events: readonly HeraldEvent[]): void {
    if (events.length === 1) {
      this.#take(events[0] as HeraldEvent);
      return;
    }
    this.owner.cork();
    try {
      for (const event of events) if (!this.#take(event)) return;
    } finally {
      this.owner.uncork();
    }
  }

  /** Sends `event` if it is new and wanted; false when nothing more should be sent. */
  #take(event: HeraldEvent): boolean {
    if (this.cancelled) return false;
    if (event.seq <= this.position) return true;
    this.position = event.seq;
    return !this.wants(event) || this.owner.sendEvent(this, event);
  }

  /** The event feed's replay (and hand-over) pages. */
  events(events: readonly HeraldEvent[]): void {
    this.offer(events);
  }

  reset(reason: 'ahead' | 'expired', latest: number): void {
    this.position = latest;
    if (!this.cancelled) this.owner.send(serverMessage.reset(this.id, reason, latest));
  }
}

function anyMatches(patterns: readonly string[], type: string): boolean {
  for (const pattern of patterns) if (patternMatches(pattern, type)) return true;
  return false;
}
