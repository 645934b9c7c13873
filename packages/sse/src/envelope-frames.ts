import type { HeraldEvent } from '@herald/core';
import { encodeFrame } from './sse-frame.js';

/** Chunks made in one tick, kept for the other streams that get the same frames in it. */
const chunksKept = 8;

interface Encoded {
  named?: Buffer;
  plain?: Buffer;
  /** The event's `time`, parsed once. */
  publishedAt: number;
}

/**
 * The frame of each event, encoded to UTF-8 once however many streams it is written to: `id: <seq>`,
 * `event: <type>` (left out for plain `message` streams), `data: <envelope JSON>`. And the chunk of a
 * batch, made once: streams that get the very same frames in one tick write the same Buffer.
 */
export class EnvelopeFrames {
  readonly #encoded = new WeakMap<HeraldEvent, Encoded>();
  #chunks: { frames: readonly Buffer[]; chunk: Buffer }[] = [];
  #clearing = false;

  of(event: HeraldEvent, named: boolean): Buffer {
    const encoded = this.#entry(event);
    if (named) return (encoded.named ??= Buffer.from(encodeFrame({ id: event.seq, event: event.type, data: JSON.stringify(event) })));
    return (encoded.plain ??= Buffer.from(encodeFrame({ id: event.seq, data: JSON.stringify(event) })));
  }

  /** When `event` was published, in ms since the epoch. */
  publishedAt(event: HeraldEvent): number {
    return this.#entry(event).publishedAt;
  }

  /**
   * `frames` back to back in one Buffer: the same Buffer for every stream that gets the same frames (the
   * same Buffers, in the same order) in this tick; what is kept is let go of on the next one.
   */
  chunk(frames: readonly Buffer[]): Buffer {
    if (frames.length === 1) return frames[0] as Buffer;
    for (const kept of this.#chunks) if (sameFrames(kept.frames, frames)) return kept.chunk;
    const chunk = Buffer.concat(frames as Buffer[]);
    if (this.#chunks.length === chunksKept) this.#chunks.shift();
    this.#chunks.push({ frames, chunk });
    if (!this.#clearing) {
      this.#clearing = true;
      setImmediate(() => {
        this.#chunks = [];
        this.#clearing = false;
      });
    }
    return chunk;
  }

  #entry(event: HeraldEvent): Encoded {
    let encoded = this.#encoded.get(event);
    if (encoded === undefined) this.#encoded.set(event, (encoded = { publishedAt: Date.parse(event.time) }));
    return encoded;
  }
}

function sameFrames(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
