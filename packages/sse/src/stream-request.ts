import { eventFilterQuery, HeraldError, queryTypes, requireTypesOrSubscription } from '@herald/core';
import { z } from 'zod';

/** A `Last-Event-ID` (or `?lastEventId=`) that is not a log position: 400. */
export class MalformedLastEventIdError extends HeraldError {
  override readonly name = 'MalformedLastEventIdError';
  constructor(where: string) {
    super('malformed-last-event-id', 400, `${where} must be the seq of an event: a non-negative integer`, 'Malformed Last-Event-ID');
  }
}

/**
 * The query of `GET /v1/stream`: either `types` (comma-separated, or repeated) for an ad hoc stream,
 * or `subscription` to attach to a durable one. `access_token` is read by the server's auth. Other
 * parameters pass (EventSource polyfills add their own), but `types[]`, which would leave the stream
 * asking for something else than what was meant.
 */
export const streamQuery = z
  .looseObject({
    types: queryTypes.optional(),
    subscription: z.string().min(1).max(128).optional().describe('A durable SSE subscription to attach to, instead of `types`'),
    /** Checked by {@link parseLastEventId}, so a bad value is the same 400 here as in the header. */
    lastEventId: z.unknown().optional().describe('Resume after this seq; the `Last-Event-ID` header wins'),
    filter: eventFilterQuery.optional(),
    /** `false` sends every event as a plain `message` (one `onmessage` handler for every type). @default 'true' */
    named: z.enum(['true', 'false']).default('true').describe('`false`: plain `message` events instead of `event: <type>`'),
  })
  .superRefine(requireTypesOrSubscription);

export type StreamQuery = z.output<typeof streamQuery>;

/** The seq in a `Last-Event-ID`; absent or empty is no position. Throws {@link MalformedLastEventIdError}. */
export function parseLastEventId(value: unknown, where: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value)) throw new MalformedLastEventIdError(where);
  const seq = Number(value);
  if (!Number.isSafeInteger(seq)) throw new MalformedLastEventIdError(where);
  return seq;
}
