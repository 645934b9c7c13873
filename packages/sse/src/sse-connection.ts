import {
  countDeliveries,
  type HeraldEvent,
  type MatchedBatch,
  publishedAt,
  type ResetReason,
  type StreamEndReason,
  type StreamSink,
  type StreamSubscription,
  type TransportFrames,
  type TransportMetrics,
} from '@herald/core';
import { z } from 'zod';
import type { EnvelopeFrames } from './envelope-frames.js';
import { encodeFrame } from './sse-frame.js';
import type { SseStream } from './sse-stream.js';

/** The frames of the stream besides the events, for the AsyncAPI document: `ready` (the stream's first), and `reset` as {@link SseConnection.reset} writes it. */
export const frames = {
  client: {},
  server: {
    ready: z.object({ after: z.number().int().nonnegative() }).describe('The stream is open; events follow after `after`'),
    reset: z
      .object({ reason: z.enum(['ahead', 'expired']), latest: z.number().int().nonnegative(), oldest: z.number().int().positive().optional() })
      .describe(
        'The resume position cannot be served; the stream goes on after `latest`. `expired`: the events before `oldest` (the oldest the log holds in full) were pruned',
      ),
    end: z
      .object({ reason: z.enum(['token-expired', 'revoked', 'stopping', 'deleted']), message: z.string() })
      .describe('The server ends the stream, for `reason`: the last frame before it does'),
  },
} satisfies TransportFrames;

/** Why the stream ends: the session's reasons, or the durable subscription it attaches to was deleted. */
type EndReason = StreamEndReason | 'deleted';

/** What the `end` frame tells the client, by why the stream ended. */
const endMessages: Record<EndReason, string> = {
  'token-expired': 'the stream token expired: open the stream again with a new token and lastEventId',
  revoked: 'the key was revoked',
  stopping: 'the server is stopping: reconnect',
  deleted: 'the subscription was deleted',
};

/**
 * One client's stream: the wire format of its session's one subscription. Writes the events a batch
 * brings in one write and, on a durable subscription, acknowledges them once the operating system has
 * taken them.
 */
export class SseConnection implements StreamSink {
  readonly stream: SseStream;
  readonly #subscription: StreamSubscription;
  readonly #frames: EnvelopeFrames;
  readonly #named: boolean;
  readonly #metrics: TransportMetrics;
  /** While corked: the frames of the batch, and the last seq among them. */
  #batch: Buffer[] | undefined;
  #batchSeq = 0;

  /** @param named `false`: plain `message` events instead of `event: <type>`. */
  constructor(stream: SseStream, subscription: StreamSubscription, frames: EnvelopeFrames, named: boolean, metrics: TransportMetrics) {
    this.stream = stream;
    this.#subscription = subscription;
    this.#frames = frames;
    this.#named = named;
    this.#metrics = metrics;
  }

  deliver(_subscription: StreamSubscription, event: HeraldEvent): boolean {
    const frames = this.#frames;
    const frame = frames.of(event, this.#named);
    const batch = this.#batch;
    if (batch === undefined) this.#write(frame, event.seq);
    else {
      batch.push(frame);
      this.#batchSeq = event.seq;
    }
    this.#metrics.delivered('delivered', Date.now() - publishedAt(event));
    return !this.stream.closed;
  }

  /** Writes a live batch's events: the chunk made once for every stream of the same format that takes them, in one write. */
  deliverMatched(_subscription: StreamSubscription, batch: MatchedBatch): boolean {
    const named = this.#named;
    const frames = this.#frames;
    const bytes = batch.shared(named ? 'named' : 'plain', () => frames.chunk(batch.events.map((event) => frames.of(event, named))));
    this.#write(bytes, batch.events[batch.events.length - 1]?.seq ?? 0);
    countDeliveries(this.#metrics, 'delivered', batch.publishedAt);
    return !this.stream.closed;
  }

  cork(): void {
    this.#batch = [];
  }

  uncork(): void {
    const batch = this.#batch;
    this.#batch = undefined;
    if (batch !== undefined && batch.length > 0) this.#write(this.#frames.chunk(batch), this.#batchSeq);
  }

  reset(_subscription: StreamSubscription, reason: ResetReason, latest: number, oldest?: number): void {
    this.stream.write(encodeFrame({ id: latest, event: 'reset', data: JSON.stringify({ reason, latest, ...(oldest !== undefined ? { oldest } : {}) }) }));
  }

  /**
   * Ends the stream with an `end` frame that says why. The frame has no `id`, so the client's last event
   * ID stays that of the last event it received, ready for a new stream that resumes after it.
   */
  end(reason: EndReason): void {
    this.stream.write(encodeFrame({ event: 'end', data: JSON.stringify({ reason, message: endMessages[reason] }) }));
    this.stream.end();
  }

  removed(): void {
    this.end('deleted');
  }

  drained(): Promise<void> {
    return this.stream.drained();
  }

  #write(chunk: Buffer, seq: number): void {
    const subscription = this.#subscription;
    if (subscription.durable === undefined) this.stream.write(chunk);
    else this.stream.write(chunk, () => subscription.acknowledge(seq));
  }
}
