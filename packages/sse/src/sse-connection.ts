import type { EventFeed, EventFeedSink, HeraldEvent, Principal, TransportFrames, TransportMetrics } from '@herald/core';
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
      .object({ reason: z.enum(['ahead', 'expired']), latest: z.number().int().nonnegative() })
      .describe('The resume position cannot be served; start again from `latest`'),
    end: z
      .object({ reason: z.enum(['token-expired', 'revoked', 'stopping']), message: z.string() })
      .describe('The server ends the stream, for `reason`: the last frame before it does'),
  },
} satisfies TransportFrames;

/** Why the server ends a stream: the `reason` of its `end` frame. */
export type EndReason = z.infer<typeof frames.server.end>['reason'];

const maxTimer = 2_147_483_647;

/** How one connection delivers. */
export interface ConnectionOptions {
  principal: Principal;
  /** `false`: plain `message` events instead of `event: <type>`. */
  named: boolean;
  /** A last check at delivery time, after the feed's types and visibility (durable subscriptions). @default every event */
  accepts?: (event: HeraldEvent) => boolean;
  /** Called with the last seq handled: written and flushed to the socket, or passed over. */
  onPosition?: (seq: number) => void;
  /** Where each written event is counted, with its publish-to-write latency. */
  metrics: TransportMetrics;
}

/** One client's stream: takes events from its feed and writes their frames, a batch per write. */
export class SseConnection implements EventFeedSink {
  readonly stream: SseStream;
  readonly principal: Principal;
  feed?: EventFeed;
  readonly #frames: EnvelopeFrames;
  readonly #options: ConnectionOptions;
  #expiry?: NodeJS.Timeout;

  constructor(stream: SseStream, frames: EnvelopeFrames, options: ConnectionOptions) {
    this.stream = stream;
    this.principal = options.principal;
    this.#frames = frames;
    this.#options = options;
    const { expiresAt } = options.principal;
    if (expiresAt !== undefined) {
      const left = Math.max(0, Date.parse(expiresAt) - Date.now());
      this.#expiry = setTimeout(() => this.end('token-expired', 'the stream token expired: open the stream again with a new token and lastEventId'), Math.min(left, maxTimer));
      this.#expiry.unref();
    }
  }

  events(events: readonly HeraldEvent[]): void {
    if (this.stream.closed) return;
    const { accepts, named, onPosition, metrics } = this.#options;
    const now = Date.now();
    let chunk = '';
    for (const event of events) {
      if (accepts !== undefined && !accepts(event)) continue;
      chunk += this.#frames.of(event, named);
      metrics.delivered('delivered', now - Date.parse(event.time));
    }
    const last = events.at(-1);
    if (onPosition === undefined || last === undefined) this.stream.write(chunk);
    else if (chunk === '') onPosition(last.seq);
    else this.stream.write(chunk, () => onPosition(last.seq));
  }

  reset(reason: 'ahead' | 'expired', latest: number): void {
    if (this.stream.closed) return;
    const { onPosition } = this.#options;
    this.stream.write(
      encodeFrame({ id: latest, event: 'reset', data: JSON.stringify({ reason, latest }) }),
      onPosition && (() => onPosition(latest)),
    );
  }

  /**
   * Ends the stream with an `end` frame that says why. The frame has no `id`, so the client's last event
   * ID stays that of the last event it received, ready for a new stream that resumes after it.
   */
  end(reason: EndReason, message: string): void {
    this.close();
    this.stream.write(encodeFrame({ event: 'end', data: JSON.stringify({ reason, message }) }));
    this.stream.end();
  }

  /** Stops the feed; the stream is ended or destroyed by the caller. */
  close(): void {
    clearTimeout(this.#expiry);
    this.feed?.close();
  }
}
