import { z } from 'zod';

/**
 * An event as it is stored and delivered. Attribute names follow CloudEvents 1.0, so an
 * envelope maps one-to-one onto a CloudEvent in structured JSON mode.
 */
export interface HeraldEvent<TData = unknown> {
  specversion: '1.0';
  /** Unique; given by the producer for idempotency, else generated. */
  id: string;
  /** Position in the log, strictly increasing. */
  seq: number;
  /** Dot-separated, e.g. `order.created`. */
  type: string;
  source: string;
  subject?: string;
  /** RFC 3339. */
  time: string;
  datacontenttype: string;
  data: TData;
  /** Addressed to this consumer only; absent means every consumer subscribed to the type. */
  consumer?: string;
  /**
   * CloudEvents distributed-tracing extension: the W3C trace context of the span that published the event,
   * when its publish was traced (an OpenTelemetry SDK, or a `traceparent` on the publish request).
   */
  traceparent?: string;
  /** CloudEvents distributed-tracing extension: the W3C `tracestate` that goes with `traceparent`. */
  tracestate?: string;
}

const publishTimes = new WeakMap<HeraldEvent, number>();

/**
 * When `event` was published (its `time`), in ms since the epoch: parsed once per event object, however many
 * deliveries of it a transport counts in its metrics.
 */
export function publishedAt(event: HeraldEvent): number {
  let at = publishTimes.get(event);
  if (at === undefined) {
    at = Date.parse(event.time);
    publishTimes.set(event, at);
  }
  return at;
}

/** An event before the log gives it a `seq`. */
export type NewEvent<TData = unknown> = Omit<HeraldEvent<TData>, 'seq'>;

/** What a producer passes to `publish`. */
export interface PublishInput<TType extends string = string, TData = unknown> {
  type: TType;
  data: TData;
  /** Idempotency key: publishing the same id again returns the first result. */
  id?: string;
  subject?: string;
  /** Address the event to one consumer only. */
  consumer?: string;
}

/** The outcome of one publish: the stored event, and whether this call created it. */
export interface PublishResult<TData = unknown> {
  event: HeraldEvent<TData>;
  created: boolean;
}

/** {@link HeraldEvent} as a zod schema, for documents that describe it (OpenAPI, AsyncAPI). */
export const eventEnvelopeSchema = z
  .object({
    specversion: z.literal('1.0'),
    id: z.string().describe('Unique; the producer’s idempotency key, or generated'),
    seq: z.number().int().positive().describe('Position in the log, strictly increasing'),
    type: z.string().describe('The event type, e.g. `order.created`'),
    source: z.string(),
    subject: z.string().optional(),
    time: z.string().describe('When it was published (RFC 3339)'),
    datacontenttype: z.string(),
    data: z.unknown().describe('Valid against the event type’s schema'),
    consumer: z.string().optional().describe('Addressed to this consumer only; absent for every subscribed consumer'),
    traceparent: z.string().optional().describe('W3C trace context of the publish (CloudEvents distributed-tracing extension)'),
    tracestate: z.string().optional().describe('W3C `tracestate` that goes with `traceparent`'),
  });
