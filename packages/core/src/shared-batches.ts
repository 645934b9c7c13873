/** Batches joined in one tick, kept for the other connections that get the same frames in it. */
const batchesKept = 8;

/**
 * The encoded frames of a batch, back to back in one Buffer, made once however many connections it goes
 * to: connections that get the very same frames (the same Buffers, in the same order) in one tick get the
 * same Buffer, which each writes as it is. Connections that get other frames (another filter, another
 * subscription, a replay) get a Buffer of their own. What is kept is let go of on the next tick. For stream
 * transports that encode each event's frame once (WebSocket, SSE).
 */
export class SharedBatches {
  #kept: { frames: readonly Buffer[]; bytes: Buffer }[] = [];
  #clearing = false;

  /** `frames` back to back, as one Buffer. */
  of(frames: readonly Buffer[]): Buffer {
    if (frames.length === 1) return frames[0] as Buffer;
    for (const kept of this.#kept) if (sameFrames(kept.frames, frames)) return kept.bytes;
    const bytes = Buffer.concat(frames as Buffer[]);
    if (this.#kept.length === batchesKept) this.#kept.shift();
    this.#kept.push({ frames, bytes });
    if (!this.#clearing) {
      this.#clearing = true;
      setImmediate(() => {
        this.#kept = [];
        this.#clearing = false;
      });
    }
    return bytes;
  }
}

function sameFrames(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
