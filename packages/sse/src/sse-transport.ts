import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  defineRoute,
  HeraldError,
  type RouteRequest,
  StreamSessions,
  SubscriptionNotFoundError,
  type Transport,
  type TransportChannel,
  type TransportContext,
  ValidationError,
  WrongTransportError,
} from '@herald/core';
import { CorsPolicy, type SseCorsOptions } from './cors-policy.js';
import { EnvelopeFrames } from './envelope-frames.js';
import { frames, SseConnection } from './sse-connection.js';
import { encodeComment, encodeFrame } from './sse-frame.js';
import { SseStream, StreamClosedError } from './sse-stream.js';
import { parseLastEventId, type StreamQuery, streamQuery } from './stream-request.js';

/** How the SSE transport behaves. Every option has a default. */
export interface SseOptions {
  /** Where the stream is served. @default '/v1/stream' */
  path?: string;
  /** Milliseconds between `: keep-alive` comments on every stream; 0 sends none. @default 15000 */
  keepAlive?: number;
  /** The reconnection delay sent to clients as `retry:`, in ms. @default 3000 */
  retry?: number;
  /**
   * Bytes that may wait to be sent to one client. A reader that falls further behind is cut off (it
   * may reconnect and resume with `Last-Event-ID`), so memory per connection stays bounded.
   * @default 1048576 (1 MiB)
   */
  maxBufferedBytes?: number;
  /** Milliseconds between saves of durable subscriptions' cursors. @default 1000 */
  cursorInterval?: number;
  /** Let pages on other origins open the stream. @default no CORS headers: same origin only */
  cors?: SseCorsOptions;
}

/** The SSE transport, with a look at its open streams. */
export interface SseTransport extends Transport {
  readonly name: 'sse';
  /** Streams open now. */
  readonly connections: number;
}

const streamHeaders = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
  Connection: 'keep-alive',
};

/** How long stop() lets ended streams flush before it drops their connections, in ms. */
const stopGrace = 1_000;

class StoppingError extends HeraldError {
  constructor() {
    super('unavailable', 503, 'The server is stopping; reconnect to another node or later', 'Service unavailable');
  }
}

function positiveInteger(name: string, value: number, allowZero = false): number {
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new Error(`sse: ${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, not ${value}`);
  }
  return value;
}

class ServerSentEvents implements SseTransport {
  readonly name = 'sse' as const;
  readonly kind = 'stream';
  readonly channel: TransportChannel;
  readonly #path: string;
  readonly #keepAlive: number;
  readonly #retry: number;
  readonly #maxBufferedBytes: number;
  readonly #cursorInterval: number;
  readonly #cors: CorsPolicy | undefined;
  readonly #frames = new EnvelopeFrames();
  readonly #connections = new Set<SseConnection>();
  readonly #opening = new Set<Promise<unknown>>();
  #sessions: StreamSessions | undefined;
  #keepAliveTimer: NodeJS.Timeout | undefined;
  #stopping = false;

  constructor(options: SseOptions) {
    this.#path = options.path ?? '/v1/stream';
    if (!this.#path.startsWith('/')) throw new Error(`sse: path must start with "/", not "${this.#path}"`);
    this.#keepAlive = positiveInteger('keepAlive', options.keepAlive ?? 15_000, true);
    this.#retry = positiveInteger('retry', options.retry ?? 3_000, true);
    this.#maxBufferedBytes = positiveInteger('maxBufferedBytes', options.maxBufferedBytes ?? 1_048_576);
    this.#cursorInterval = positiveInteger('cursorInterval', options.cursorInterval ?? 1_000);
    this.#cors = options.cors && new CorsPolicy(options.cors);
    this.channel = {
      title: 'Server-Sent Events',
      description:
        'GET with `?types=a,b` (patterns allowed) or `?subscription=<id>`, authorised by `Authorization: Bearer` or `?access_token=` (a stream token). Each event is `id: <seq>`, `event: <type>`, `data: <envelope JSON>`; `Last-Event-ID` (or `?lastEventId=`) resumes after that seq.',
      server: { protocol: 'http', description: 'The SSE transport: a `text/event-stream` response.' },
      address: this.#path,
      frames,
    };
  }

  get connections(): number {
    return this.#connections.size;
  }

  async start(context: TransportContext): Promise<void> {
    this.#stopping = false;
    this.#sessions = new StreamSessions(context, { transport: this.name, cursorInterval: this.#cursorInterval });
    context.http.route(
      defineRoute({
        method: 'GET',
        path: this.#path,
        summary: 'Stream events as Server-Sent Events; resumes after Last-Event-ID',
        response: {
          mediaType: 'text/event-stream',
          description: 'A `ready` frame, then every matching event as `id: <seq>`, `event: <type>`, `data: <envelope>`; `reset` when the resume position is gone',
        },
        queryToken: true,
        streamToken: true,
        query: streamQuery,
        // On every answer: the server refuses some requests (no credential, a bad query, a limit) before `handle` runs.
        headers: (request) => this.#cors?.headers(request.headers.origin),
        handle: (request) => this.#track(this.#open(context, request)),
      }),
    );
    if (this.#cors) {
      if (context.http.preflight) context.http.preflight(this.#path, (request, response) => this.#preflight(request, response));
      else context.logger.warn('this server cannot answer CORS preflight requests; cross-origin streams work only without custom headers');
    }
    if (this.#keepAlive > 0) {
      const comment = encodeComment('keep-alive');
      this.#keepAliveTimer = setInterval(() => {
        for (const connection of this.#connections) connection.stream.write(comment);
      }, this.#keepAlive);
      this.#keepAliveTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#keepAliveTimer);
    // Ending the sessions writes each stream's `end` frame; then the streams get a grace period to flush it.
    await this.#sessions?.stop(async () => {
      const open = [...this.#connections];
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, stopGrace);
      });
      await Promise.race([Promise.all(open.map((connection) => connection.stream.whenGone)), graceOver]);
      clearTimeout(timer);
      // Readers that stopped reading cannot take the end of their stream: drop them.
      for (const connection of open) connection.stream.destroy();
      await Promise.allSettled(this.#opening);
    });
  }

  async #track<T>(work: Promise<T>): Promise<T> {
    this.#opening.add(work);
    try {
      return await work;
    } finally {
      this.#opening.delete(work);
    }
  }

  async #open(context: TransportContext, { principal, query, raw, response }: RouteRequest<unknown, StreamQuery>): Promise<undefined> {
    if (this.#stopping) throw new StoppingError();
    // `after` resumes a WebSocket subscription and a poll; here it would be ignored and the stream start live.
    if (new URL(raw.url ?? '', 'http://stream').searchParams.has('after')) {
      throw new ValidationError('The stream resumes with Last-Event-ID', [
        { path: ['after'], message: 'is not a parameter of the stream: resume with the Last-Event-ID header or ?lastEventId=' },
      ]);
    }
    const fromHeader = parseLastEventId(raw.headers['last-event-id'], 'The Last-Event-ID header');
    const fromQuery = parseLastEventId(query.lastEventId, 'The lastEventId parameter');
    const after = fromHeader ?? fromQuery;
    // One limit for the key's streams and its connections on every other transport.
    const session = (this.#sessions as StreamSessions).open(principal);
    let connection: SseConnection | undefined;
    // One listener for all that ends with the response: each one more costs a stream a few hundred bytes.
    response.once('close', () => {
      session.close();
      if (connection === undefined) return;
      connection.stream.gone();
      this.#connections.delete(connection);
    });
    // The query names exactly one of `types` and `subscription`.
    const subscription = session.subscribe({ types: query.types, subscription: query.subscription, after, filter: query.filter });
    try {
      await subscription.resolve();
    } catch (error) {
      session.close();
      // Another transport's subscription is as unknown here as one that does not exist.
      throw error instanceof WrongTransportError ? new SubscriptionNotFoundError(error.subscriptionId) : error;
    }
    if (this.#stopping) {
      session.close();
      throw new StoppingError();
    }
    // The client may have gone while the subscription was read; nothing would tell us later.
    if (raw.socket.destroyed) {
      session.close();
      return undefined;
    }

    response.writeHead(200, streamHeaders);
    if (raw.method === 'HEAD') {
      session.close();
      response.end();
      return undefined;
    }
    const stream = new SseStream(response, this.#maxBufferedBytes, (bufferedBytes) => {
      context.logger.warn({ consumer: principal.consumer, bufferedBytes }, 'an SSE reader fell too far behind; its stream was cut off');
    });
    connection = new SseConnection(stream, subscription, this.#frames, query.named === 'true', context.metrics);
    this.#connections.add(connection);
    releaseRouting(raw);

    // Read in the same tick as the subscription starts, so this is exactly where a live stream starts.
    const start = subscription.after ?? context.bus.latest;
    stream.write(encodeFrame({ retry: this.#retry, id: start, event: 'ready', data: JSON.stringify({ after: start }) }));
    session.attach(connection);
    try {
      await subscription.start();
    } catch (error) {
      if (!(error instanceof StreamClosedError)) context.logger.warn({ err: error }, 'replaying the log to an SSE stream failed');
      stream.destroy();
      return undefined;
    }
    if (!stream.closed) stream.enforceLimit();
    return undefined;
  }

  #preflight(request: IncomingMessage, response: ServerResponse): void {
    const headers = this.#cors?.preflightHeaders(request.headers.origin) ?? {};
    response.writeHead(204, { ...headers, 'Content-Length': '0' });
    response.end();
  }
}

/**
 * Lets go of what the router kept of a request (express's chain of `next` functions, the parsed URL, the
 * route and its params: about 1.8 KiB), which an open stream no longer needs and would hold for hours.
 */
function releaseRouting(request: IncomingMessage): void {
  const routed = request as IncomingMessage & Partial<Record<'next' | '_parsedUrl' | 'route' | 'params', unknown>>;
  routed.next = routed._parsedUrl = routed.route = routed.params = undefined;
}

/**
 * The Server-Sent Events transport: `GET /v1/stream?types=...` (or `?subscription=ID`) streams events
 * as `text/event-stream`, resumes from `Last-Event-ID`, and cuts off readers that fall too far behind.
 * `createHerald({ transports: [sse()] })`.
 */
export function sse(options: SseOptions = {}): SseTransport {
  return new ServerSentEvents(options);
}
