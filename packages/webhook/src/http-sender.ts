import { isIP } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { bareHostname, guardedLookup, type LookupFunction, RefusedTargetError, refusedAddressClass } from './address-guard.js';

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
 * whole exchange, a capped body read, and the SSRF guard on every new connection.
 */
export class HttpSender {
  readonly #agent: Agent;
  readonly #keepBytes: number;

  constructor(options: HttpSenderOptions = {}) {
    this.#keepBytes = options.keepBytes ?? 4096;
    const allowPrivate = options.allowPrivate ?? false;
    const lookup = allowPrivate ? options.lookup : guardedLookup(options.lookup);
    const base = buildConnector({ ...(lookup ? { lookup } : {}) } as buildConnector.BuildOptions);
    const connect: buildConnector.connector = (connectOptions, callback) => {
      const host = bareHostname(connectOptions.hostname);
      // net.connect does not look literal addresses up, so the guard checks them here.
      if (!allowPrivate && isIP(host) !== 0) {
        const refused = refusedAddressClass(host);
        if (refused) return callback(new RefusedTargetError(host, refused), null);
      }
      return base(connectOptions, callback);
    };
    this.#agent = new Agent({ connect, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 30_000 });
  }

  /** POSTs `body` to `url`; never throws. */
  async post(url: URL, headers: Record<string, string>, body: string, timeout: number): Promise<SendResult> {
    const started = performance.now();
    const signal = AbortSignal.timeout(timeout);
    let status: number | undefined;
    let retryAfter: string | undefined;
    const kept: Buffer[] = [];
    let keptBytes = 0;
    try {
      const response = await this.#agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers,
        body,
        signal,
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      status = response.statusCode;
      const header = response.headers['retry-after'];
      retryAfter = Array.isArray(header) ? header[0] : header;
      let read = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        if (keptBytes < this.#keepBytes) {
          const part = chunk.subarray(0, this.#keepBytes - keptBytes);
          kept.push(part);
          keptBytes += part.length;
        }
        read += chunk.length;
        if (read > drainLimit) {
          response.body.destroy();
          break;
        }
      }
      return this.#result(started, status, retryAfter, kept);
    } catch (error) {
      const result = this.#result(started, status, retryAfter, kept);
      // A body that breaks off after the status line does not change the answer.
      if (status !== undefined) return result;
      return { ...result, error: describe(error, signal, timeout) };
    }
  }

  #result(started: number, status: number | undefined, retryAfter: string | undefined, kept: Buffer[]): SendResult {
    const body = kept.length > 0 ? Buffer.concat(kept).toString('utf8') : undefined;
    return {
      durationMs: performance.now() - started,
      ...(status !== undefined ? { status } : {}),
      ...(body !== undefined && body !== '' ? { body } : {}),
      ...(retryAfter !== undefined ? { retryAfter } : {}),
    };
  }

  /** Closes idle connections and waits for the ones in use. */
  close(): Promise<void> {
    return this.#agent.close();
  }
}

function describe(error: unknown, signal: AbortSignal, timeout: number): string {
  if (signal.aborted) return `timed out after ${timeout} ms`;
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
