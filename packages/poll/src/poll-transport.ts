import {
  countDeliveries,
  defineRoute,
  publishedAt,
  type RouteRequest,
  type RouteResult,
  StreamSessions,
  SubscriptionNotFoundError,
  type Transport,
  type TransportChannel,
  type TransportContext,
  ValidationError,
  WrongTransportError,
} from '@herald/core';
import { type PollAnswer, type PollQuery, pollAnswerSchema, pollQuery } from './poll-query.js';

/** How the long-polling transport behaves. Every option has a default. */
export interface PollOptions {
  /** Where polls are answered. @default '/v1/poll' */
  path?: string;
  /** Seconds a poll without `wait` waits for its first event. @default 25 */
  defaultWait?: number;
  /**
   * Seconds a poll waits at most, whatever its `wait`: a longer one is cut to this. Keep it under the
   * idle timeout of the proxies between clients and the server. @default 60
   */
  maxWait?: number;
  /** Milliseconds between saves of durable subscriptions' cursors. @default 1000 */
  cursorInterval?: number;
  /**
   * Milliseconds a waiting poll woken by an event waits for more before it answers, so that events
   * published together reach the client in one answer rather than one poll each. 0 answers at once. @default 5
   */
  batchWait?: number;
}

/** The long-polling transport, with a look at the polls it is answering. */
export interface PollTransport extends Transport {
  readonly name: 'poll';
  /** Polls being answered now: most of them waiting for an event. */
  readonly waiting: number;
}

/** How long a poll answered with nothing must have waited to spend no request of its key's rate limit: a `wait=0.001` loop spends. */
const freeEmptyPollMs = 1_000;

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new Error(`poll: ${name} must be a non-negative number, not ${value}`);
  return value;
}

class LongPolling implements PollTransport {
  readonly name = 'poll' as const;
  readonly kind = 'pull';
  readonly channel: TransportChannel;
  readonly #path: string;
  readonly #defaultWait: number;
  readonly #maxWait: number;
  readonly #cursorInterval: number;
  readonly #batchWait: number;
  readonly #answering = new Set<Promise<unknown>>();
  #sessions: StreamSessions | undefined;

  constructor(options: PollOptions) {
    this.#path = options.path ?? '/v1/poll';
    if (!this.#path.startsWith('/')) throw new Error(`poll: path must start with "/", not "${this.#path}"`);
    this.#maxWait = nonNegative('maxWait', options.maxWait ?? 60);
    this.#defaultWait = Math.min(nonNegative('defaultWait', options.defaultWait ?? 25), this.#maxWait);
    this.#cursorInterval = options.cursorInterval ?? 1_000;
    this.#batchWait = nonNegative('batchWait', options.batchWait ?? 5);
    if (!Number.isSafeInteger(this.#cursorInterval) || this.#cursorInterval < 1) {
      throw new Error(`poll: cursorInterval must be a positive integer, not ${this.#cursorInterval}`);
    }
    this.channel = {
      title: 'Long polling',
      description: `GET with \`?types=a,b\` (patterns allowed) or \`?subscription=<id>\`, and \`after=<seq>\`: the answer, \`{ events, next }\` in JSON, holds the events after that seq (these messages), at once or once the first is published, within \`wait\` seconds (${this.#defaultWait} by default, at most ${this.#maxWait}); poll again with \`after=next\`. Authorised by \`Authorization: Bearer\` or \`?access_token=\` (a stream token). The request and its answer are in \`/openapi.json\`.`,
      server: { protocol: 'http', description: 'The long-polling transport: a JSON answer to each GET.' },
      address: this.#path,
    };
  }

  get waiting(): number {
    return this.#sessions?.size ?? 0;
  }

  async start(context: TransportContext): Promise<void> {
    const sessions = new StreamSessions(context, { transport: this.name, cursorInterval: this.#cursorInterval });
    this.#sessions = sessions;
    context.http.route(
      defineRoute({
        method: 'GET',
        path: this.#path,
        summary: 'Long-poll: the events after `after`, waiting up to `wait` seconds for the first; poll again with `after=next`',
        response: { body: pollAnswerSchema },
        queryToken: true,
        streamToken: true,
        longPoll: true,
        query: pollQuery,
        handle: async (request) => {
          const answering = this.#answer(sessions, context, request);
          this.#answering.add(answering);
          try {
            return await answering;
          } finally {
            this.#answering.delete(answering);
          }
        },
      }),
    );
  }

  /** Answers every waiting poll with what it has (usually nothing), refuses new ones with 503, and saves the cursors. */
  async stop(): Promise<void> {
    await this.#sessions?.stop(async () => {
      await Promise.allSettled(this.#answering);
    });
  }

  async #answer(sessions: StreamSessions, context: TransportContext, request: RouteRequest<unknown, PollQuery>): Promise<RouteResult | undefined> {
    const { principal, query, raw, response } = request;
    // SSE's resume header: a poll that ignored it would start at the end of the log and miss the events in between.
    if (raw.headers['last-event-id'] !== undefined) {
      throw new ValidationError('A poll resumes with after', [{ path: ['Last-Event-ID'], message: "is not read by a poll: resume with after=<seq> (the previous answer's next)" }]);
    }
    // The poll holds one of the key's connections while it waits, as a WebSocket or an SSE stream does.
    const session = sessions.open(principal);
    // A client that gives up waiting frees its slot at once.
    response.once('close', () => session.close());
    try {
      const { after } = query;
      // The query names exactly one of `types` and `subscription`.
      const subscription = session.subscribe({ types: query.types, subscription: query.subscription, after, filter: query.filter });
      try {
        await subscription.resolve();
      } catch (error) {
        // Another transport's subscription is as unknown here as one that does not exist.
        throw error instanceof WrongTransportError ? new SubscriptionNotFoundError(error.subscriptionId) : error;
      }
      // HEAD is answered as GET would be, without its side effects: no wait, no read, no cursor moved.
      if (raw.method === 'HEAD') return { headers: { 'Content-Type': 'application/json; charset=utf-8' } };
      const wait = Math.min(query.wait ?? this.#defaultWait, this.#maxWait);
      const began = Date.now();
      const { events, next, reset, waited } = await subscription.pull({ limit: query.limit, wait: Math.round(wait * 1000), batchWait: this.#batchWait });
      if (response.destroyed) return undefined;
      // As SSE and WebSocket count a replay: every event handed over, its latency from its publication.
      countDeliveries(context.metrics, 'delivered', events.map(publishedAt));
      const answer: PollAnswer = { data: events, next, ...(reset ? { reset } : {}) };
      const headers: Record<string, string> = {};
      // A stopping server closes the connection after the answer, so that it need not wait for the client to.
      if (session.ended === 'stopping') headers.Connection = 'close';
      // A poll that waited and a live event answered, or that waited a while for none, is bounded by the key's
      // connections, as a stream is. One answered at once (a read of the log, or nothing) is a request like any other.
      const free = waited && (events.length > 0 || Date.now() - began >= freeEmptyPollMs);
      return { headers, body: answer, countsAgainstRateLimit: !free };
    } finally {
      session.close();
    }
  }
}

/**
 * The HTTP long-polling transport: `GET /v1/poll?types=...` (or `?subscription=ID`) answers
 * `{ data, next, reset? }`, the events after `after`, waiting up to `wait` seconds for the first one.
 * Polling again with `after=next` reads on, and acknowledges a durable subscription's events.
 * `createHerald({ transports: [poll()] })`.
 */
export function poll(options: PollOptions = {}): PollTransport {
  return new LongPolling(options);
}
