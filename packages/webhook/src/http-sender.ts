import { isIP } from 'node:net';
import { Agent, buildConnector } from 'undici';
import {
  bareHostname,
  destinationLookup,
  type LookupFunction,
  LookupTimeoutError,
  lookupWithin,
  RefusedTargetError,
  refusedAddressClass,
  type TrackedLookup,
  trackedLookup,
} from '@herald/outbox';

export interface HttpSenderOptions {
  /** Connect to loopback, private and link-local addresses too. @default false */
  allowPrivate?: boolean;
  /** Resolves names; the SSRF guard checks what it returns. @default dns.lookup */
  lookup?: LookupFunction;
  /** How much of a response body is kept, in bytes. @default 4096 */
  keepBytes?: number;
}

/** What came of one POST. */
export interface SendResult {
  /** The HTTP status, when the endpoint answered. */
  status?: number;
  /** The start of the response body, as text. */
  body?: string;
  /** `Retry-After`, when the endpoint sent one. */
  retryAfter?: string;
  /** Why there is no usable answer: a timeout, a refused or failed connection... */
  error?: string;
  durationMs: number;
}

/** Past this much of a response body the connection is dropped rather than drained for reuse. */
const drainLimit = 64 * 1024;

/**
 * POSTs webhooks with undici: keep-alive connections per origin, no redirects, a timeout for the
 * whole exchange (connecting, the name's lookup included), a capped body read, and the SSRF guard on every
 * new connection.
 */
export class HttpSender {
  readonly #options: HttpSenderOptions;
  readonly #keepBytes: number;
  /** By the timeout of the POSTs that use them: the transport gives every POST the same one. */
  readonly #connections = new Map<number, Connections>();
  #closed = false;

  constructor(options: HttpSenderOptions = {}) {
    this.#options = options;
    this.#keepBytes = options.keepBytes ?? 4096;
  }

  /** POSTs `body` to `url`, within `timeout` (ms) in all; never throws. */
  post(url: URL, headers: Record<string, string>, body: string, timeout: number): Promise<SendResult> {
    if (this.#closed) return Promise.resolve({ error: 'the webhook sender is closed', durationMs: 0 });
    let connections = this.#connections.get(timeout);
    if (!connections) {
      connections = new Connections(timeout, this.#options);
      this.#connections.set(timeout, connections);
    }
    const { agent } = connections;
    const unresolved = () => (connections.resolving(url.hostname) ? url.hostname : undefined);
    return new Promise((resolve) => {
      const exchange = new Exchange(this.#keepBytes, timeout, unresolved, resolve);
      // undici's dispatch API with a plain handler: no response stream and no abort signal per request.
      agent.dispatch(
        // The exchange's own timer bounds the whole of it: undici's header and body timers are off.
        { origin: url.origin, path: `${url.pathname}${url.search}`, method: 'POST', headers, body, headersTimeout: 0, bodyTimeout: 0 },
        exchange,
      );
    });
  }

  /** Closes idle connections and waits for the ones in use. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#connections.values()].map(({ agent }) => agent.close()));
  }
}

/**
 * The connections of the POSTs given one timeout: each is made, its name's lookup included, within that timeout
 * or not at all, so that an attempt that gave up leaves no connection behind it, and a timeout over undici's
 * default connect timeout (10 s) is not cut short by it.
 */
class Connections {
  readonly agent: Agent;
  /** The names being looked up for a connection. */
  readonly #names: TrackedLookup;

  constructor(timeout: number, { allowPrivate = false, lookup }: HttpSenderOptions) {
    // The guard hands on the answer it checked, so the connection goes where it looked (no DNS rebinding); an answer
    // later than the timeout is dropped, and connects nowhere.
    this.#names = trackedLookup(lookupWithin(destinationLookup({ allowPrivate, lookup }), timeout));
    const base = buildConnector({ timeout, lookup: this.#names.lookup } as buildConnector.BuildOptions);
    const connect: buildConnector.connector = (connectOptions, callback) => {
      const host = bareHostname(connectOptions.hostname);
      // net.connect does not look literal addresses up, so the guard checks them here.
      if (!allowPrivate && isIP(host) !== 0) {
        const refused = refusedAddressClass(host);
        if (refused) return callback(new RefusedTargetError(host, refused), null);
      }
      return base(connectOptions, callback);
    };
    this.agent = new Agent({ connect, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 30_000 });
  }

  /** Whether a connection is waiting for `hostname` to be looked up. */
  resolving(hostname: string): boolean {
    return this.#names.resolving(hostname);
  }
}

/** One POST as undici's dispatcher reports it, with a timer for the whole exchange. */
class Exchange {
  readonly #started = performance.now();
  readonly #keepBytes: number;
  readonly #timeout: number;
  readonly #unresolved: () => string | undefined;
  readonly #resolve: (result: SendResult) => void;
  #timer: NodeJS.Timeout;
  #abort?: (reason?: Error) => void;
  #status?: number;
  #retryAfter?: string;
  readonly #kept: Buffer[] = [];
  #keptBytes = 0;
  #read = 0;
  /** Why it timed out, once it has. */
  #timedOut?: string;
  #done = false;

  /** `unresolved` gives the URL's host name while a connection waits for its lookup. */
  constructor(keepBytes: number, timeout: number, unresolved: () => string | undefined, resolve: (result: SendResult) => void) {
    this.#keepBytes = keepBytes;
    this.#timeout = timeout;
    this.#unresolved = unresolved;
    this.#resolve = resolve;
    this.#timer = setTimeout(() => this.#expire(), timeout);
  }

  #expire(): void {
    // The event loop's clock counts whole milliseconds, so a timer may fire up to one early.
    const left = this.#timeout - (performance.now() - this.#started);
    if (left > 0) {
      this.#timer = setTimeout(() => this.#expire(), Math.ceil(left));
      return;
    }
    // Not connected while the name is still being looked up: the lookup is what ran out (its own timer, set just after
    // this one, has not fired yet).
    const unresolved = this.#abort === undefined ? this.#unresolved() : undefined;
    this.#timedOut = unresolved ? new LookupTimeoutError(unresolved, this.#timeout).reason : `timed out after ${this.#timeout} ms`;
    // A request still waiting for a connection has no abort yet: onConnect aborts it.
    this.#abort?.(new Error('timed out'));
    this.onError(new Error('timed out'));
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.#abort = abort;
    if (this.#timedOut) abort(new Error('timed out'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true;
    this.#status = statusCode;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as Buffer;
      if (name.length === 11 && name.toString('latin1').toLowerCase() === 'retry-after') {
        this.#retryAfter = rawHeaders[i + 1]?.toString('latin1');
        break;
      }
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#keptBytes < this.#keepBytes) {
      const part = chunk.subarray(0, this.#keepBytes - this.#keptBytes);
      this.#kept.push(part);
      this.#keptBytes += part.length;
    }
    this.#read += chunk.length;
    if (this.#read > drainLimit) this.#abort?.(new Error('the response body is too long to drain'));
    return true;
  }

  onComplete(): void {
    this.#finish();
  }

  onError(error: Error): void {
    // A body that breaks off after the status line does not change the answer.
    this.#finish(this.#status === undefined ? (this.#timedOut ?? describe(error, this.#timeout)) : undefined);
  }

  #finish(error?: string): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    const result: SendResult = { durationMs: performance.now() - this.#started };
    if (this.#status !== undefined) result.status = this.#status;
    if (this.#keptBytes > 0) result.body = Buffer.concat(this.#kept).toString('utf8');
    if (this.#retryAfter !== undefined) result.retryAfter = this.#retryAfter;
    if (error !== undefined) result.error = error;
    this.#resolve(result);
  }
}

function describe(error: unknown, timeout: number): string {
  if (error instanceof RefusedTargetError) return error.message;
  const cause = error instanceof Error && error.cause instanceof RefusedTargetError ? error.cause : undefined;
  if (cause) return cause.message;
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (ECONNREFUSED)';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return `connection closed before an answer (${code})`;
    case 'ENOTFOUND':
      return `the host name does not resolve (ENOTFOUND)`;
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `timed out after ${timeout} ms (${code})`;
    default:
      return code ? `${message} (${code})` : message;
  }
}
