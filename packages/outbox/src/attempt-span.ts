import { eventTraceContext, messagingAttributes, startSpan } from '@herald/core';
import { type Span, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { PushResult } from './attempt-outcome.js';
import type { PushConfig, PushMessage } from './push-transport.js';

/**
 * The span of one delivery attempt, a child of the publish of its event (whose trace context the event
 * carries), however long after the publish and on whichever node it is made. Attributes are set only
 * when the span is recorded: with no OpenTelemetry SDK an attempt costs a span start and nothing more.
 */
export function attemptSpan<TConfig extends PushConfig>(transport: string, message: Omit<PushMessage<TConfig>, 'trace'>): Span {
  const { event, subscription, delivery } = message;
  return startSpan(`send ${event.type}`, SpanKind.PRODUCER, eventTraceContext(event), () => ({
    ...messagingAttributes('send', event.type),
    'messaging.message.id': event.id,
    'herald.transport': transport,
    'herald.subscription.id': subscription.id,
    'herald.delivery.id': delivery.id,
    'herald.delivery.attempt': delivery.attempts,
  }));
}

/** Ends an attempt's span with what came of it. */
export function endAttemptSpan(span: Span, result: PushResult): void {
  if (span.isRecording()) {
    span.setAttribute('herald.delivery.outcome', result.delivered ? 'delivered' : 'failed');
    if (result.responseStatus !== undefined) span.setAttribute('herald.delivery.response_status', result.responseStatus);
    if (!result.delivered) span.setStatus({ code: SpanStatusCode.ERROR, message: result.error ?? 'the attempt failed' });
  }
  span.end();
}
