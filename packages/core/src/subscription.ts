import { z } from 'zod';
import type { HeraldEvent } from './envelope.js';
import type { EventFilter } from './event-filter.js';
import { eventTypePattern, matchesPattern } from './names.js';

/** `pending` waits for endpoint verification; only `active` subscriptions receive events. */
export const subscriptionStatus = z.enum(['active', 'paused', 'disabled', 'pending']);
export type SubscriptionStatus = z.infer<typeof subscriptionStatus>;

/** One or more event types or patterns, without repeats. */
export const subscriptionTypes = z
  .array(eventTypePattern)
  .min(1)
  .max(100)
  .transform((types) => [...new Set(types)]);

/**
 * A consumer's standing request for events of some types over one transport. `TConfig` is the stored
 * config of that transport (`Transport<TConfig>`), which `isSubscriptionOf` tells a subscription of it by.
 */
export interface Subscription<TConfig extends Record<string, unknown> = Record<string, unknown>> {
  id: string;
  consumer: string;
  transport: string;
  /** Exact names and patterns (`*` one segment, `**` any trailing segments). */
  types: string[];
  status: SubscriptionStatus;
  /** Transport-specific, validated by the transport's own schema. */
  config: TConfig;
  /** Takes only the events it lets through (see `EventFilter`); absent: every event of its types. */
  filter?: EventFilter;
  /** The last `seq` this subscription has acknowledged (WebSocket/SSE durable subscriptions). */
  cursor: number;
  /** Why the subscription was disabled, when the system disabled it. */
  disabledReason?: string;
  createdAt: string;
  updatedAt: string;
}

/** What a store needs to create a subscription. */
export type NewSubscription = Omit<Subscription, 'createdAt' | 'updatedAt'>;

/** The fields an update may change; a `filter` of `null` removes the filter. */
export type SubscriptionChanges = Partial<Pick<Subscription, 'types' | 'status' | 'config' | 'cursor' | 'disabledReason'>> & {
  filter?: EventFilter | null;
};

/** Whether `changes` touch what a subscription matches: any field but the cursor, given a value. */
export function affectsMatching(changes: SubscriptionChanges): boolean {
  return Object.entries(changes).some(([field, value]) => field !== 'cursor' && value !== undefined);
}

/** Whether `event` is for `consumer`: addressed to nobody in particular, or to it. No consumer sees every event. */
export function addressedTo(event: Pick<HeraldEvent, 'consumer'>, consumer: string | undefined): boolean {
  return consumer === undefined || event.consumer === undefined || event.consumer === consumer;
}

/** Whether `event` is one that `types` (patterns), seen by `consumer`, take. */
export function takesEvent(event: Pick<HeraldEvent, 'type' | 'consumer'>, types: readonly string[], consumer: string | undefined): boolean {
  return addressedTo(event, consumer) && types.some((pattern) => matchesPattern(pattern, event.type));
}
