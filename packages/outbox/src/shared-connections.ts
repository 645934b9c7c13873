/**
 * Connections (or channels) by key, each opened once and shared by every delivery to it. One that fails to
 * open, or that `watch` reports gone, is forgotten, and the next `get` opens a new one. For push transports
 * that keep connections to their destinations (AMQP brokers, NATS servers).
 */
export class SharedConnections<T> {
  readonly #open = new Map<string, Promise<T>>();
  readonly #watch: (connection: T, key: string, gone: () => void) => void;

  /** `watch` is handed each connection once open, with `gone` to call when it closes. */
  constructor(watch: (connection: T, key: string, gone: () => void) => void) {
    this.#watch = watch;
  }

  /** The connection of `key`, opened with `open` when there is none. */
  get(key: string, open: () => Promise<T>): Promise<T> {
    let connection = this.#open.get(key);
    if (!connection) {
      const opening = open();
      connection = opening;
      this.#open.set(key, opening);
      const gone = () => {
        if (this.#open.get(key) === opening) this.#open.delete(key);
      };
      opening.then((opened) => this.#watch(opened, key, gone), gone);
    }
    return connection;
  }

  /** Forgets the connections whose key `which` picks (their owner closed them). */
  forget(which: (key: string) => boolean): void {
    for (const key of this.#open.keys()) if (which(key)) this.#open.delete(key);
  }

  /** Every connection, forgotten: for closing them. */
  takeAll(): Promise<T>[] {
    const all = [...this.#open.values()];
    this.#open.clear();
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
