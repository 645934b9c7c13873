import { passingStatus, ReconnectBackoff, retryAfterOf } from '@herald/client';

/** An event type as `GET /v1/event-types` lists it. */
export interface EventType {
  name: string;
  description?: string;
  schema?: unknown;
  /** An example of its data, from its schema. */
  example?: unknown;
}

/** A subscription as the API shows it (secrets only when just made). */
export interface Subscription {
  id: string;
  transport: string;
  types: string[];
  status: string;
  config: Record<string, unknown>;
  /** Its payload filter ([docs/guides/filters.md](../../../docs/guides/filters.md)), when it has one. */
  filter?: Record<string, unknown> | null;
}

/** How a transport reaches its consumers, as `GET /v1/transports` says. */
export interface MountedTransport {
  name: string;
  kind: 'push' | 'stream' | 'pull';
}

/** What `POST /v1/subscriptions/:id/test` made of one test event: a single attempt, stored nowhere. */
export interface TestAttempt {
  status: string;
  responseStatus: number | null;
  durationMs: number;
  responseBody: string | null;
  error: string | null;
  /** The test event sent: `seq` 0, an id that starts with `evt_test_`. */
  event?: { type?: string };
}

/** Where a replay starts: after a `seq`, or at a point in time (an ISO 8601 instant). */
export type ReplayStart = { after: number } | { since: string };

/** A replay as `GET /v1/subscriptions/:id/replay` shows it (on any node): how far it got, and how it ended. */
export interface Replay {
  id: string;
  status: 'running' | 'completed' | 'cancelled' | 'failed';
  /** Events after this seq, up to `until`, are replayed. */
  after: number;
  until: number;
  /** Every matching event up to this seq has its delivery. */
  position: number;
  /** Deliveries made (or started again) so far. */
  replayed: number;
  startedAt: string;
  finishedAt: string | null;
  /** Why it was cancelled or failed. */
  error?: string;
}

/** One reason of a problem answer: where in the request (`['filter', 'data.total']`), and what is wrong there. */
export interface ProblemIssue {
  path: (string | number)[];
  message: string;
}

/** One try at delivering an event. */
export interface Attempt {
  attempt: number;
  startedAt: string | null;
  status: string;
  responseStatus: number | null;
  durationMs: number;
  responseBody: string | null;
  error: string | null;
}

/** A delivery of a push subscription, with its attempts. */
export interface Delivery {
  id: string;
  createdAt?: string;
  eventSeq: number;
  status: string;
  attemptCount: number;
  /** When a pending delivery is due (past while it is being sent); null once it is settled. */
  nextAttemptAt?: string | null;
  attempts: Attempt[];
}

/** An event of the live tail: its `seq`, its type, and its envelope as JSON. */
export interface TailEvent {
  seq: string;
  type: string;
  data: string;
}

/** What the live tail is doing: a stream is `open`, or it is `reconnecting` (waiting to open a new one). */
export type TailState = 'open' | 'reconnecting';

/** A stream of the live tail ended for a reason that passes: a new one resumes it, after `retryAfter` ms at least when the server said so. */
class StreamInterrupted extends Error {
  constructor(
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** Waits `ms`, or less when `signal` aborts meanwhile (the timer is cleared then). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((done) => {
    if (signal.aborted) return done();
    const finish = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', finish);
      done();
    };
    const timer = setTimeout(finish, ms);
    signal.addEventListener('abort', finish, { once: true });
  });
}

/** The portal token was refused (401), or the live tail ended for it; the message is the server's reason. */
export class SessionEndedError extends Error {
  constructor(
    message: string,
    /** Whether the token worked and then stopped (it expired, or was revoked), rather than missing or never known to the server. */
    readonly ended: boolean,
  ) {
    super(message);
  }
}

/** Whether a `reason` (of a 401 answer, or of the live tail's `end` frame) says that a token that was good once stopped: it expired, or it or the key that issued it was revoked. */
const tokenEnded = (reason: unknown) => reason === 'token-expired' || reason === 'revoked';

/** The members of the JSON object in `text` (a 401's problem, an `end` frame's data), or none when it holds no JSON object. */
function membersOf(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The API refused a request with a problem+json answer: its `detail` is the message, with its status and issues. */
export class ProblemError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly issues: readonly ProblemIssue[],
  ) {
    super(message);
  }
}

/**
 * The browser got no answer at all from the API at `baseUrl`: it is down or out of reach, or, on another origin than
 * the page, it answers without the CORS headers that let the page read it (a browser tells the page no more than
 * that a fetch failed: "Failed to fetch", "NetworkError…", "Load failed"). The message says what to check.
 */
export class UnreachableError extends Error {
  constructor(baseUrl: string) {
    const page = globalThis.location;
    const api = new URL(baseUrl || page.origin, page.href);
    const where = api.href.replace(/\/$/, '');
    super(
      api.origin === page.origin
        ? `Herald did not answer at ${where}. Check that it is running and reachable from this page.`
        : `Herald did not answer at ${where}. Check that it is running and reachable from this page; it is on another origin than this page (${page.origin}), so a CORS layer in front of it must allow that origin (Herald's docs/portal.md, "Another origin: CORS").`,
    );
  }
}

/** The consumer routes of a Herald server, called with a portal token. */
export class PortalApi {
  /** Whether the server has taken the token in an answer to this client. */
  #accepted = false;

  constructor(
    readonly baseUrl: string,
    readonly token: string,
  ) {}

  /** Throws SessionEndedError when the server refused the token (401); otherwise notes that it took it. */
  async #tokenTaken(response: Response): Promise<void> {
    if (response.status === 401) {
      const { detail, reason } = membersOf(await response.text().catch(() => ''));
      throw new SessionEndedError(typeof detail === 'string' ? detail : '', this.#accepted || tokenEnded(reason));
    }
    this.#accepted = true;
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch {
      throw new UnreachableError(this.baseUrl);
    }
    await this.#tokenTaken(response);
    const text = await response.text();
    const parsed = text ? JSON.parse(text) : undefined;
    if (!response.ok) {
      const issues = Array.isArray(parsed?.errors) ? (parsed.errors as ProblemIssue[]) : [];
      throw new ProblemError(parsed?.detail ?? `${method} ${path} answered ${response.status}`, response.status, issues);
    }
    return parsed as T;
  }

  async eventTypes(): Promise<EventType[]> {
    return (await this.#call<{ data: EventType[] }>('GET', '/v1/event-types')).data;
  }

  async subscriptions(): Promise<Subscription[]> {
    return (await this.#call<{ data: Subscription[] }>('GET', '/v1/subscriptions')).data;
  }

  /** The transports the server mounts; an older server, without the route, is taken to mount a webhook transport only. */
  async transports(): Promise<MountedTransport[]> {
    try {
      return (await this.#call<{ data: MountedTransport[] }>('GET', '/v1/transports')).data;
    } catch (error) {
      if (error instanceof ProblemError && error.status === 404) return [{ name: 'webhook', kind: 'push' }];
      throw error;
    }
  }

  createSubscription(input: { transport: string; types: string[]; config: Record<string, unknown>; filter?: Record<string, unknown> }): Promise<Subscription> {
    return this.#call('POST', '/v1/subscriptions', input);
  }

  updateSubscription(id: string, change: { status?: 'active' | 'paused'; types?: string[]; filter?: Record<string, unknown> | null }): Promise<Subscription> {
    return this.#call('PATCH', `/v1/subscriptions/${encodeURIComponent(id)}`, change);
  }

  async deleteSubscription(id: string): Promise<void> {
    await this.#call('DELETE', `/v1/subscriptions/${encodeURIComponent(id)}`);
  }

  async rotateSecret(id: string): Promise<string> {
    return (await this.#call<{ secret: string }>('POST', `/v1/subscriptions/${encodeURIComponent(id)}/secret/rotate`, {})).secret;
  }

  deliveries(id: string, status: string, before?: number, limit = 20): Promise<{ data: Delivery[]; next: number | null }> {
    const query = new URLSearchParams({ limit: String(limit), ...(status ? { status } : {}), ...(before !== undefined ? { before: String(before) } : {}) });
    return this.#call('GET', `/v1/subscriptions/${encodeURIComponent(id)}/deliveries?${query}`);
  }

  /** The deliveries of subscription `id` made since `since` (ms), newest first: at most `pages` pages of 200. */
  async deliveriesSince(id: string, since: number, pages = 10): Promise<Delivery[]> {
    const all: Delivery[] = [];
    let before: number | undefined;
    for (let page = 0; page < pages; page++) {
      const { data, next } = await this.deliveries(id, '', before, 200);
      all.push(...data);
      const oldest = data.at(-1);
      if (next === null || !oldest || Date.parse(oldest.createdAt ?? '') < since) break;
      before = next;
    }
    return all;
  }

  async retry(deliveryId: string): Promise<void> {
    await this.#call('POST', `/v1/deliveries/${encodeURIComponent(deliveryId)}/retry`);
  }

  replay(id: string, start: ReplayStart): Promise<Replay> {
    return this.#call('POST', `/v1/subscriptions/${encodeURIComponent(id)}/replay`, start);
  }

  /** The running or last replay of push subscription `id`; undefined before any. */
  async lastReplay(id: string): Promise<Replay | undefined> {
    try {
      return await this.#call<Replay>('GET', `/v1/subscriptions/${encodeURIComponent(id)}/replay`);
    } catch (error) {
      if (error instanceof ProblemError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** Cancels the running replay of push subscription `id` (the deliveries it made stay). */
  cancelReplay(id: string): Promise<Replay> {
    return this.#call('DELETE', `/v1/subscriptions/${encodeURIComponent(id)}/replay`);
  }

  /** Sends push subscription `id` one test event now, outside its deliveries, and answers how the attempt went. */
  sendTest(id: string, event: { type?: string; data?: unknown } = {}): Promise<TestAttempt> {
    return this.#call('POST', `/v1/subscriptions/${encodeURIComponent(id)}/test`, event);
  }

  /**
   * Reads `GET /v1/stream` (SSE) with the token in a header, never in the URL, calling `onEvent` for each
   * event until `signal` aborts. When a stream ends for a reason that passes (an `end` frame with reason
   * `stopping`, a connection that fails or closes without an `end` frame, an answer of 408, 429 or 5xx), it
   * calls `onState('reconnecting')` and opens a new one after a jittered exponential backoff (at least the
   * `Retry-After` of the answer, when it has one), resuming after the last event seen (`lastEventId`), so that
   * no event is missed or seen twice; `onState('open')` once a stream is open. Throws SessionEndedError when
   * the token is refused or a stream ends for it (expired, revoked), and an Error for any other end (a 403, a 404).
   */
  async stream(
    signal: AbortSignal,
    onEvent: (event: TailEvent) => void,
    onState: (state: TailState) => void = () => {},
  ): Promise<void> {
    const backoff = new ReconnectBackoff({});
    // The position the next stream resumes after: the `id` of the last frame seen (an event's seq, or where a `ready` or `reset` frame put it).
    let position: string | undefined;
    while (!signal.aborted) {
      try {
        await this.#streamOnce(signal, position, {
          position: (id) => {
            position = id;
          },
          event: onEvent,
          open: () => {
            backoff.reset();
            onState('open');
          },
        });
        return;
      } catch (error) {
        if (signal.aborted) return;
        if (!(error instanceof StreamInterrupted)) throw error;
        onState('reconnecting');
        await pause(Math.max(error.retryAfter ?? 0, backoff.next()), signal);
      }
    }
  }

  /** One stream, after `position` when given: returns once `signal` aborts, throws StreamInterrupted when it ends for a reason that passes. */
  async #streamOnce(
    signal: AbortSignal,
    position: string | undefined,
    on: { position: (id: string) => void; event: (event: TailEvent) => void; open: () => void },
  ): Promise<void> {
    // The position goes in the query, not in a Last-Event-ID header, which a CORS preflight in front of the API would have to allow.
    const query = new URLSearchParams({ types: '**', ...(position !== undefined ? { lastEventId: position } : {}) });
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/v1/stream?${query}`, { headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' }, signal });
    } catch (error) {
      if (signal.aborted) return;
      throw new StreamInterrupted(`the connection failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    await this.#tokenTaken(response);
    if (passingStatus(response.status)) {
      await response.body?.cancel().catch(() => {});
      throw new StreamInterrupted(`the live tail answered ${response.status}`, retryAfterOf(response.headers.get('retry-after')));
    }
    if (!response.ok || !response.body) {
      const { detail } = membersOf(await response.text().catch(() => ''));
      throw new Error(`The live tail answered ${response.status}${typeof detail === 'string' && detail ? `: ${detail}` : ''}`);
    }
    on.open();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      let chunk: ReadableStreamReadResult<string>;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (signal.aborted) return;
        throw new StreamInterrupted(`the connection dropped: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (chunk.done) throw new StreamInterrupted('the stream closed without an end frame');
      buffer += chunk.value;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        // Only whole frames count: one cut off by a dropped connection is read again from the position, on the next stream.
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const field = (name: string) => frame.split('\n').find((line) => line.startsWith(`${name}: `))?.slice(name.length + 2) ?? '';
        const type = field('event');
        if (type === 'end') {
          // Only a token that ended ends the session; a server that stops (`stopping`) is reconnected to.
          const { reason, message } = membersOf(field('data'));
          const why = typeof message === 'string' ? message : field('data');
          if (tokenEnded(reason)) throw new SessionEndedError(why, true);
          if (reason === 'stopping') throw new StreamInterrupted(why);
          throw new Error(`The live tail ended (${why}). Open Live tail again to go on.`);
        }
        const id = field('id');
        if (id) on.position(id);
        if (id && type && type !== 'ready' && type !== 'reset') on.event({ seq: id, type, data: field('data') });
        end = buffer.indexOf('\n\n');
      }
    }
  }
}
