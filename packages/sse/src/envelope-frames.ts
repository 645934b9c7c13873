import { type HeraldEvent, SharedBatches } from '@herald/core';
import { encodeFrame } from './sse-frame.js';

interface Encoded {
  named?: Buffer;
  plain?: Buffer;
}

/**
 * The frame of each event, encoded to UTF-8 once however many streams it is written to: `id: <seq>`,
 * `event: <type>` (left out for plain `message` streams), `data: <envelope JSON>`. And the chunk of a
 * batch, made once: streams that get the very same frames in one tick write the same Buffer.
 */
export class EnvelopeFrames {
  readonly #encoded = new WeakMap<HeraldEvent, Encoded>();
  readonly #batches = new SharedBatches();

  of(event: HeraldEvent, named: boolean): Buffer {
    const encoded = this.#entry(event);
    if (named) return (encoded.named ??= Buffer.from(encodeFrame({ id: event.seq, event: event.type, data: JSON.stringify(event) })));
    return (encoded.plain ??= Buffer.from(encodeFrame({ id: event.seq, data: JSON.stringify(event) })));
  }

  /**
   * `frames` back to back in one Buffer: the same Buffer for every stream that gets the same frames (the
   * same Buffers, in the same order) in this tick; what is kept is let go of on the next one.
   */
  chunk(frames: readonly Buffer[]): Buffer {
    return this.#batches.of(frames);
  }

  #entry(event: HeraldEvent): Encoded {
    let encoded = this.#encoded.get(event);
    if (encoded === undefined) this.#encoded.set(event, (encoded = {}));
    return encoded;
  }
}
