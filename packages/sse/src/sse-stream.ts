import type { ServerResponse } from 'node:http';

/** Thrown by {@link SseStream.drained} once the stream is closed, to stop a replay. */
export class StreamClosedError extends Error {
  override readonly name = 'StreamClosedError';
  constructor() {
    super('The stream is closed');
  }
}

/**
 * One open `text/event-stream` response. Writes never block: what the socket cannot take yet waits in
 * the response's buffer, and once that holds more than `maxBufferedBytes` the stream is cut off, so
 * a reader that stops reading costs bounded memory and never slows anyone else.
 */
export class SseStream {
  readonly #response: ServerResponse;
  readonly #maxBufferedBytes: number;
  readonly #onCutOff: (bufferedBytes: number) => void;
  #enforcing = false;
  #closed = false;
  #gone = false;
  /** Made only when someone waits for it: an idle stream holds no promise. */
  #whenGone?: Promise<void>;
  #resolveGone?: () => void;

  /** The owner calls {@link gone} when `response` closes (it listens once for everything that ends with it). */
  constructor(response: ServerResponse, maxBufferedBytes: number, onCutOff: (bufferedBytes: number) => void) {
    this.#response = response;
    this.#maxBufferedBytes = maxBufferedBytes;
    this.#onCutOff = onCutOff;
  }

  /** Resolves when the response is closed (ended and flushed, cut off, or the client went away). */
  get whenGone(): Promise<void> {
    if (this.#gone) return Promise.resolve();
    this.#whenGone ??= new Promise((resolve) => {
      this.#resolveGone = resolve;
    });
    return this.#whenGone;
  }

  /** The response closed: nothing more can be written. */
  gone(): void {
    this.#closed = true;
    this.#gone = true;
    this.#resolveGone?.();
  }

  /** True once nothing more can be written: ended, cut off, or gone. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Writes `chunk`, then cuts the stream off if the buffer is over the limit (once {@link enforceLimit}
   * is on). `flushed` is called once the chunk has been handed to the operating system.
   */
  write(chunk: string | Buffer, flushed?: () => void): void {
    if (this.#closed || chunk.length === 0) return;
    if (flushed) this.#response.write(chunk, (error) => error || flushed());
    else this.#response.write(chunk);
    this.#checkLimit();
  }

  /**
   * Turns the buffer limit on. A replay paces itself with {@link drained} instead, so its pages may
   * briefly go over the limit without cutting a reader off.
   */
  enforceLimit(): void {
    this.#enforcing = true;
    this.#checkLimit();
  }

  /** Resolves once the buffer is down to the socket's high-water mark; rejects once the stream is closed. */
  drained(): Promise<void> {
    if (this.#closed) return Promise.reject(new StreamClosedError());
    const response = this.#response;
    if (response.writableLength <= response.writableHighWaterMark) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        response.off('drain', done);
        response.off('close', done);
        if (this.#closed) reject(new StreamClosedError());
        else resolve();
      };
      response.on('drain', done);
      response.on('close', done);
    });
  }

  /**
   * Ends the stream properly (the client may reconnect); the connection is closed with it. A reader
   * that does not take the end within `grace` ms is dropped.
   */
  end(grace = 5_000): void {
    if (this.#closed) return;
    this.#closed = true;
    const socket = this.#response.socket;
    this.#response.end();
    // A keep-alive connection would otherwise stay open after the stream, holding up server.close().
    socket?.end();
    const timer = setTimeout(() => this.destroy(), grace);
    timer.unref();
    void this.whenGone.then(() => clearTimeout(timer));
  }

  /** Drops the connection at once, with whatever is still buffered. */
  destroy(): void {
    this.#closed = true;
    if (!this.#gone) this.#response.destroy();
  }

  #checkLimit(): void {
    if (!this.#enforcing || this.#closed) return;
    const buffered = this.#response.writableLength;
    if (buffered <= this.#maxBufferedBytes) return;
    this.destroy();
    this.#onCutOff(buffered);
  }
}
