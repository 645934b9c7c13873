/** FIN and the text opcode: a whole text message in one frame. */
const finText = 0x81;

/** The whole WebSocket text frame a server sends for `payload` (RFC 6455 §5.2: unmasked), header and payload in one Buffer. */
export function encodeTextFrame(payload: Buffer): Buffer {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = finText;
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
  payload.copy(frame, header);
  return frame;
}

/** The payload of a frame made by {@link encodeTextFrame}. */
export function textPayload(frame: Buffer): Buffer {
  const marker = frame[1] as number;
  return frame.subarray(marker < 126 ? 2 : marker === 126 ? 4 : 10);
}

/** Batches encoded in one tick, kept for the other connections that get the same frames in it. */
const batchesKept = 8;

/**
 * The frames of a batch, back to back in one Buffer, made once however many connections it goes to:
 * connections that get the very same frames (the same Buffers, in the same order) in one tick get the
 * same Buffer, which each writes as it is. Connections that get other frames (another filter, another
 * subscription id, a replay) get a Buffer of their own. What is kept is let go of on the next tick.
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
