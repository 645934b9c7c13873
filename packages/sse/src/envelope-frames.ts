import type { HeraldEvent } from '@herald/core';
import { encodeFrame } from './sse-frame.js';

/**
 * The frame of each event, encoded once however many streams it is written to: `id: <seq>`,
 * `event: <type>` (left out for plain `message` streams), `data: <envelope JSON>`.
 */
export class EnvelopeFrames {
  readonly #named = new WeakMap<HeraldEvent, string>();
  readonly #plain = new WeakMap<HeraldEvent, string>();

  of(event: HeraldEvent, named: boolean): string {
    const cache = named ? this.#named : this.#plain;
    let frame = cache.get(event);
    if (frame === undefined) {
      frame = encodeFrame({ id: event.seq, ...(named ? { event: event.type } : {}), data: JSON.stringify(event) });
      cache.set(event, frame);
    }
    return frame;
  }
}
