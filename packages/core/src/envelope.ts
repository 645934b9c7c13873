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
