/**
 * An event as Herald delivers it on every transport: the envelope, with CloudEvents 1.0 attribute
 * names. The client keeps its own copy of the type so that it depends on nothing at run time.
 */
export interface DeliveredEvent<TType extends string = string, TData = unknown> {
  specversion: '1.0';
  id: string;
  /** Position in the log, strictly increasing; what a reconnection resumes after. */
  seq: number;
  type: TType;
  source: string;
  subject?: string;
  time: string;
  datacontenttype: string;
  data: TData;
  /** Set when the event is addressed to one consumer. */
  consumer?: string;
  /** CloudEvents distributed tracing: the W3C trace context of the publish, when it was traced. */
  traceparent?: string;
  /** CloudEvents distributed tracing: the W3C `tracestate` that goes with `traceparent`. */
  tracestate?: string;
}
