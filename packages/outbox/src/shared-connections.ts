/**
 * Connections (or channels) by key, each opened once and shared by every delivery to it. One that fails to
 * open, or that `watch` reports gone, is forgotten, and the next `get` opens a new one. One that is {@link retire}d
 * (it stopped answering) is forgotten too, and closed once the sends still on it have ended. For push transports
 * that keep connections to their destinations (AMQP brokers, NATS servers).
 */
export class SharedConnections<T> {
  readonly #open = new Map<string, Promise<T>>();
  /** What each key's open resolved to, while it is the one `get` gives. */
  readonly #held = new Map<string, T>();
  /** How many sends are under way on each connection that has any. */
  readonly #sending = new Map<T, number>();
  /** Retired connections not closed yet: each closes with its last send. */
  readonly #retired = new Set<T>();
  readonly #watch: (connection: T, key: string, gone: () => void) => void;
  readonly #close: (connection: T) => void;

  /** `watch` is handed each connection once open, with `gone` to call when it closes; `close` closes a retired one. */
  constructor(watch: (connection: T, key: string, gone: () => void) => void, close: (connection: T) => void = () => {}) {
    this.#watch = watch;
    this.#close = close;
  }

  /** The connection of `key`, opened with `open` when there is none. */
  get(key: string, open: () => Promise<T>): Promise<T> {
    let connection = this.#open.get(key);
    if (!connection) {
      const opening = open();
      connection = opening;
      this.#open.set(key, opening);
      const forget = () => {
        if (this.#open.get(key) !== opening) return;
        this.#open.delete(key);
        this.#held.delete(key);
      };
      opening.then((opened) => {
        if (this.#open.get(key) === opening) this.#held.set(key, opened);
        this.#watch(opened, key, () => {
          forget();
          this.#retired.delete(opened);
        });
      }, forget);
    }
    return connection;
  }

  /** A send on `connection` begins; the function returned ends it (once). A retired connection closes with its last send. */
  sending(connection: T): () => void {
    this.#sending.set(connection, (this.#sending.get(connection) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const left = (this.#sending.get(connection) ?? 1) - 1;
      if (left > 0) return void this.#sending.set(connection, left);
      this.#sending.delete(connection);
      if (this.#retired.delete(connection)) this.#close(connection);
    };
  }

  /**
   * Takes `connection` out of the pool when it is the one held for `key` (it stopped answering): the next `get`
   * opens a new one, and it is closed once the sends on it have ended. Returns how many are; undefined when it was
   * not held (retired already, closed, or replaced).
   */
  retire(key: string, connection: T): number | undefined {
    if (this.#held.get(key) !== connection) return undefined;
    this.#open.delete(key);
    this.#held.delete(key);
    const sending = this.#sending.get(connection) ?? 0;
    if (sending === 0) this.#close(connection);
    else this.#retired.add(connection);
    return sending;
  }

  /** Every connection, retired ones too, forgotten: for closing them. */
  takeAll(): Promise<T>[] {
    const all = [...this.#open.values(), ...[...this.#retired].map((connection) => Promise.resolve(connection))];
    this.#open.clear();
    this.#held.clear();
    this.#retired.clear();
    return all;
  }
}

/**
 * The reason in words of an OpenSSL error (`sslv3 alert bad certificate`), whose message is a dump of its error queue;
 * undefined for any other error. For the errors a push transport's TLS connections fail with.
 */
export function openSslReason(error: unknown): string | undefined {
  const reason = typeof error === 'object' && error !== null && 'library' in error && 'reason' in error ? error.reason : undefined;
  return typeof reason === 'string' ? reason : undefined;
}

/**
 * Whether a send's wait for its answer (a confirm, a PubAck) that did not come says anything of its connection: not
 * when setting the connection up (`setUp`: what it was, and the ms it `took`) used more than half of the `attempt`'s
 * ms, leaving the wait too little. Then the error to give, the connection kept for the next attempt (taken out, a
 * destination slow to connect would be connected to again by every attempt, each failing the same way); else
 * undefined: retire it. `why` says what did not come in time.
 */
export function waitCutShort(why: string, setUp: { what: string; took: number }, attempt: number): string | undefined {
  if (attempt - setUp.took >= attempt / 2) return undefined;
  return `${why}, as ${setUp.what} took ${setUp.took} ms of the attempt's ${attempt} ms: the connection is kept for the next attempt`;
}
