import type { IncomingHttpHeaders } from 'node:http';
import {
  type Attributes,
  type Context,
  context,
  createTraceState,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

/**
 * Herald's tracer, through `@opentelemetry/api` alone: it records nothing until the application registers
 * an OpenTelemetry SDK's tracer provider, and costs next to nothing until then.
 */
export const heraldTracer = trace.getTracer('herald');

/** The CloudEvents distributed-tracing extension: the W3C trace context of the span that published an event. */
export interface TraceFields {
  /** W3C `traceparent`: `00-<trace id>-<span id>-<flags>`. */
  traceparent?: string;
  /** W3C `tracestate`, when the trace carries vendor state. */
  tracestate?: string;
}

const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The W3C `traceparent` (and `tracestate`) of a span, or nothing when it has no valid context (no trace). */
export function traceFields(span: Span): TraceFields {
  const spanContext = span.spanContext();
  if (!isSpanContextValid(spanContext)) return {};
  const traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${spanContext.traceFlags.toString(16).padStart(2, '0')}`;
  const tracestate = spanContext.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/** Parses a W3C `traceparent` (and `tracestate`) into a remote span context; undefined when it is not a valid one. */
export function parseTraceparent(traceparent: string | undefined, tracestate?: string): SpanContext | undefined {
  const match = traceparent === undefined ? null : traceparentPattern.exec(traceparent.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [string, string, string, string, string, string | undefined];
  // Version ff is invalid; version 00 has nothing after the flags.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  const spanContext: SpanContext = { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true };
  if (!isSpanContextValid(spanContext)) return undefined;
  if (tracestate) spanContext.traceState = createTraceState(tracestate);
  return spanContext;
}

/** `base` with the span that published `event` as the parent of the spans started in it; `base` itself when the event carries no trace. */
export function eventTraceContext(event: TraceFields, base: Context = ROOT_CONTEXT): Context {
  const remote = parseTraceparent(event.traceparent, event.tracestate);
  return remote ? trace.setSpanContext(base, remote) : base;
}

/**
 * The context a request's work is traced in: the active one when it holds a span (an HTTP instrumentation
 * made one for the request), else one whose parent is the request's `traceparent` header, if it has one.
 */
export function requestTraceContext(headers: IncomingHttpHeaders): Context {
  const active = context.active();
  if (trace.getSpan(active)) return active;
  const { traceparent, tracestate } = headers;
  const fields: TraceFields = {};
  if (typeof traceparent === 'string') fields.traceparent = traceparent;
  if (tracestate !== undefined) fields.tracestate = Array.isArray(tracestate) ? tracestate.join(',') : tracestate;
  return eventTraceContext(fields, active);
}

/**
 * The attributes of the OpenTelemetry semantic conventions for messaging that Herald's spans carry:
 * `operation` is `messaging.operation.name` (`publish`, `send`, `deliver`, `replay`), `destination` the event type.
 */
export function messagingAttributes(operation: string, destination?: string): Attributes {
  return {
    'messaging.system': 'herald',
    'messaging.operation.name': operation,
    ...(operation === 'replay' ? {} : { 'messaging.operation.type': 'send' }),
    ...(destination !== undefined ? { 'messaging.destination.name': destination } : {}),
  };
}

/**
 * Starts a span of `kind` in `parent`. Its attributes are worked out only when the span is recorded: with
 * no SDK, a span costs its start and nothing more.
 */
export function startSpan(name: string, kind: SpanKind, parent: Context, attributes: () => Attributes): Span {
  const span = heraldTracer.startSpan(name, { kind }, parent);
  if (span.isRecording()) span.setAttributes(attributes());
  return span;
}

/** Ends `span`, marked as failed with `error` when there is one. */
export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }
  span.end();
}

/**
 * Runs `work` in a span named `name`, a child of `parent`, ended (and marked failed should `work` throw or
 * reject) once it settles: at once for a value, when it settles for a promise. Under a parent that is not
 * recorded (no SDK, or sampled out) it makes no span at all.
 */
export function inSpan<T>(name: string, parent: Context, work: () => T): T {
  if (!trace.getSpan(parent)?.isRecording()) return work();
  const span = heraldTracer.startSpan(name, undefined, parent);
  let result: T;
  try {
    result = work();
  } catch (error) {
    endSpan(span, error);
    throw error;
  }
  if (!(result instanceof Promise)) {
    span.end();
    return result;
  }
  return result.then(
    (value: unknown) => {
      span.end();
      return value;
    },
    (error: unknown) => {
      endSpan(span, error);
      throw error;
    },
  ) as T;
}

/**
 * The span of one live batch handed to a streaming transport's connections (WebSocket, SSE): one span per
 * batch rather than per connection, so that the fan-out costs no more than a span start with no SDK. A
 * batch of one event is a child of its publish; a recorded span links to the publish of every event.
 */
export function deliverySpan(transport: string, events: readonly (TraceFields & { type: string })[]): Span {
  const first = events[0];
  const single = events.length === 1 && first !== undefined;
  const span = startSpan(single ? `deliver ${first.type}` : 'deliver', SpanKind.PRODUCER, single ? eventTraceContext(first) : ROOT_CONTEXT, () => ({
    ...messagingAttributes('deliver', single ? first.type : undefined),
    'messaging.batch.message_count': events.length,
    'herald.transport': transport,
  }));
  if (!single && span.isRecording()) {
    span.addLinks(events.flatMap((event) => {
      const publish = parseTraceparent(event.traceparent, event.tracestate);
      return publish ? [{ context: publish }] : [];
    }));
  }
  return span;
}
