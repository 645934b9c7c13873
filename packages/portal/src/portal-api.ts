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

/**
 * What the live tail is doing: a stream is `open`, or it is `reconnecting`, waiting to open a new one. Then
 * `failures` counts the tries in a row that got no stream (0 when an open stream ended), `reason` says why the
 * last one got none, `silentFor` is set (in ms) when the stream was dropped for sending nothing that long, and
 * `retryNow` makes a fresh try at once: it cuts the wait short, or, once the next try is under way and has no stream
 * yet (a slow proxy holds it), drops that try, which counts as no failure, and makes another.
 */
export type TailState = { state: 'open' } | { state: 'reconnecting'; failures: number; reason: string; silentFor?: number; retryNow: () => void };

/**
 * A stream of the live tail ended for a reason that passes: a new one resumes it, after `retryAfter` ms at least
 * when the server said so. `silentFor`: it was taken for dropped after sending nothing for that many ms.
 */
class StreamInterrupted extends Error {
  constructor(
    message: string,
    readonly options: { retryAfter?: number | undefined; silentFor?: number } = {},
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

/** Resolves once `signal` aborts. */
function abortOf(signal: AbortSignal): Promise<void> {
  return new Promise((done) => {
    if (signal.aborted) return done();
    signal.addEventListener('abort', () => done(), { once: true });
  });
}

/** A signal that aborts `ms` from now, unless `clear` comes first: how long a request waits for its answer. */
function deadlineOf(ms: number): { signal: AbortSignal; clear: () => void } {
  const expiry = new AbortController();
  const timer = setTimeout(() => expiry.abort(), ms);
  return { signal: expiry.signal, clear: () => clearTimeout(timer) };
}

/** How long the portal waits for Herald to answer a request, and the live tail for a stream's first answer, in ms. */
export const defaultTimeout = 15_000;

/**
 * How long the live tail's stream may send nothing, not an event nor a `: keep-alive` comment, before the tail takes
 * it for dropped, in ms: three times the SSE transport's keep-alive interval (15 s by default).
 */
export const defaultIdleTimeout = 45_000;

/** `15 s`, `1.5 s`, `500 ms`. */
export const durationOf = (ms: number) => (ms < 1_000 ? `${ms} ms` : `${ms / 1_000} s`);

/** The address of the API at `baseUrl` (the page's origin when empty), without a trailing slash. */
function apiAddress(baseUrl: string): string {
  return new URL(baseUrl || globalThis.location.origin, globalThis.location.href).href.replace(/\/$/, '');
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

/** The JSON object in `text` (a 401's problem, an `end` frame's data), or undefined when it holds none. */
function objectOf(text: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
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
    const where = apiAddress(baseUrl);
    super(
      new URL(where).origin === page.origin
        ? `Herald did not answer at ${where}. Check that it is running and reachable from this page.`
        : `Herald did not answer at ${where}. Check that it is running and reachable from this page; it is on another origin than this page (${page.origin}), so a CORS layer in front of it must allow that origin (Herald's docs/portal.md, "Another origin: CORS").`,
    );
  }
}

/**
 * Herald at `baseUrl` gave no answer within `timeout` ms, though nothing failed either: it hangs or is overloaded,
 * or something in front of it holds the request. The message says what to check.
 */
export class NoAnswerInTimeError extends Error {
  constructor(baseUrl: string, timeout: number) {
    super(
      `Herald did not answer at ${apiAddress(baseUrl)} within ${durationOf(timeout)}. Check that it is running and not overloaded, and that nothing in front of it (a proxy, a firewall) holds requests back.`,
    );
  }
}

/**
 * Herald at `baseUrl`, or something in front of it (a proxy's error page or sign-in page, a website at the wrong
 * address), answered a request with a body that is not JSON. The message says so, with the status, rather than the
 * parser's error, or than that the session ended (a 401).
 */
export class NotJsonError extends Error {
  constructor(
    baseUrl: string,
    readonly status: number,
  ) {
    super(
      `Herald at ${apiAddress(baseUrl)} answered HTTP ${status} (not JSON). ${
        status >= 200 && status < 300
          ? "Check that the portal's base-url is the address of Herald's API, not of a web page."
          : status === 401
            ? "Check that what stands in front of it (a proxy that signs users in) lets the portal's requests through to Herald, with their Authorization header."
            : 'Check that it is running, and that what stands in front of it (a proxy) reaches it.'
      }`,
    );
  }
}

/** Why a stream of the live tail at `baseUrl` got an answer of `status` instead of events. */
function streamRefusal(baseUrl: string, status: number): string {
  const where = apiAddress(baseUrl);
  return status === 429
    ? `Herald at ${where} answered HTTP 429: this session opened too many requests or streams just now.`
    : `Herald at ${where} answered HTTP ${status} instead of the live tail's stream. Check that it is running, and that what stands in front of it (a proxy) reaches it.`;
}

/** Why a stream of the live tail at `baseUrl` got an answer of `status`, of content type `type`, that is not an event stream. */
function notAStream(baseUrl: string, status: number, type: string): string {
  return `Herald at ${apiAddress(baseUrl)} answered HTTP ${status} (${type || 'no content type'}) instead of the live tail's stream (text/event-stream). Check that the portal's base-url is the address of Herald's API, and that what stands in front of it (a proxy) passes the stream on.`;
}

/** Why the live tail took a stream at `baseUrl` that opened and then sent nothing for `idleTimeout` ms for dropped. */
function silentStream(baseUrl: string, idleTimeout: number): string {
  return `Herald at ${apiAddress(baseUrl)} opened the live tail's stream, then sent nothing for ${durationOf(idleTimeout)}, not even a keep-alive. Check that what stands in front of it (a proxy) passes the stream on as it comes, without buffering it.`;
}

/** An answer's body as JSON (undefined when empty); a body that is not JSON, such as a proxy's page, throws {@link NotJsonError}. */
function jsonOf(text: string, baseUrl: string, status: number): { errors?: unknown; detail?: unknown } | undefined {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    throw new NotJsonError(baseUrl, status);
  }
}

/** What a read of the API may be given. */
export interface ReadOptions {
  /**
   * Drops the read once it aborts: its requests end, and it rejects with the signal's reason (an AbortError) rather
   * than with what it got, or with why it failed, so that a load dropped for a fresh one shows nothing of its own.
   */
  signal?: AbortSignal | undefined;
}

/** Which page of a subscription's deliveries to read, newest first. */
export interface DeliveriesQuery extends ReadOptions {
  /** Only the deliveries of this status (`pending`, `delivered`, `failed`). @default '' (any) */
  status?: string;
  /** Only those older than this: the `next` of the page before. @default undefined (the newest) */
  before?: number | undefined;
  /** How many at most. @default 20 */
  limit?: number;
}

/** The consumer routes of a Herald server, called with a portal token. */
export class PortalApi {
  /** Whether the server has taken the token in an answer to this client. */
  #accepted = false;
  /** Why the server refused the token, once it did: every later request fails so, without asking again. */
  #refusal: SessionEndedError | undefined;
  /** Until the server has taken the token: the answer to the last request sent, which the next ones wait for. */
  #lastAsked: Promise<unknown> | undefined;
  /** Aborted by close(): ends every request under way. */
  readonly #closed = new AbortController();
  #timeout = defaultTimeout;
  #idleTimeout = defaultIdleTimeout;

  constructor(
    readonly baseUrl: string,
    readonly token: string,
    timeout = defaultTimeout,
  ) {
    this.timeout = timeout;
  }

  /**
   * How long a request waits for Herald's answer (and the live tail for a stream's first answer), in ms, from
   * when it is made; then it fails with NoAnswerInTimeError. Anything but a positive number sets the default.
   * @default 15000
   */
  get timeout(): number {
    return this.#timeout;
  }

  set timeout(ms: number) {
    this.#timeout = Number.isFinite(ms) && ms > 0 ? ms : defaultTimeout;
  }

  /**
   * How long, in ms, a live tail's stream may send nothing (no event, no `: keep-alive` comment) before it is taken for
   * dropped and a new one resumes it; keep it above the server's keep-alive interval. 0 turns the check off; anything
   * else that is not a positive number sets the default. A stream that opens next uses the value set.
   * @default 45000
   */
  get idleTimeout(): number {
    return this.#idleTimeout;
  }

  set idleTimeout(ms: number) {
    this.#idleTimeout = ms === 0 ? 0 : Number.isFinite(ms) && ms > 0 ? ms : defaultIdleTimeout;
  }

  /**
   * Ends every request under way, and answers none from now on: their promises never settle, so that nothing asked
   * for a session that was replaced lands in the view of the next one. A live tail's `stream` returns.
   */
  close(): void {
    this.#closed.abort();
  }

  /** What `work` settles with, unless the client was closed meanwhile: then it never settles (see close). */
  #unlessClosed<T>(work: Promise<T>): Promise<T> {
    const never = () => new Promise<T>(() => {});
    return work.then(
      (value) => (this.#closed.signal.aborted ? never() : value),
      (error: unknown) => (this.#closed.signal.aborted ? never() : Promise.reject(error)),
    );
  }

  /**
   * Throws SessionEndedError when the server refused the token (a 401 with a problem, JSON); otherwise notes that it
   * took it. A 401 that is not Herald's (an auth proxy's sign-in page in front of it) throws NotJsonError: the session
   * goes on, and the next request asks again.
   */
  async #tokenTaken(response: Response): Promise<void> {
    if (response.status === 401) {
      const problem = objectOf(await response.text().catch(() => ''));
      if (!problem) throw new NotJsonError(this.baseUrl, response.status);
      const { detail, reason } = problem;
      this.#refusal = new SessionEndedError(typeof detail === 'string' ? detail : '', this.#accepted || tokenEnded(reason));
      throw this.#refusal;
    }
    this.#accepted = true;
  }

  /**
   * Fetches `path` with the token, until `signal` (or close) aborts. Until the server has taken the token, a
   * request waits for the answer to the one before, so that a token it refuses costs one 401, not one for each
   * request a view makes at once; without a token, nothing is asked. Throws SessionEndedError when the token is
   * refused, and what fetch throws (an AbortError once `signal` aborts, while it waits too).
   */
  async #ask(path: string, init: { method?: string; headers?: Record<string, string>; body?: string }, until: AbortSignal): Promise<Response> {
    const signal = AbortSignal.any([until, this.#closed.signal]);
    // Only awaited when there is an answer to wait for: the first request must take its place before the next one looks.
    const before = this.#accepted ? undefined : this.#lastAsked;
    if (before) await Promise.race([before.catch(() => {}), abortOf(signal)]);
    if (!this.token) this.#refusal ??= new SessionEndedError('', false);
    if (this.#refusal) throw this.#refusal;
    signal.throwIfAborted();
    const answer = fetch(`${this.baseUrl}${path}`, { ...init, signal, headers: { ...init.headers, authorization: `Bearer ${this.token}` } }).then(async (response) => {
      await this.#tokenTaken(response);
      return response;
    });
    if (!this.#accepted) this.#lastAsked = answer;
    return answer;
  }

  #call<T>(method: string, path: string, body?: unknown, dropped?: AbortSignal): Promise<T> {
    return this.#unlessClosed(this.#callOnce<T>(method, path, body, dropped));
  }

  /**
   * One request, answered in full within the timeout, or failed with why: SessionEndedError, NoAnswerInTimeError,
   * UnreachableError, ProblemError; once `dropped` aborts, the reason it aborted with, whatever came (see ReadOptions).
   */
  async #callOnce<T>(method: string, path: string, body?: unknown, dropped?: AbortSignal): Promise<T> {
    const timeout = this.timeout;
    const deadline = deadlineOf(timeout);
    let response: Response;
    let text: string;
    try {
      response = await this.#ask(
        path,
        { method, ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) },
        dropped ? AbortSignal.any([deadline.signal, dropped]) : deadline.signal,
      );
      text = await response.text();
    } catch (error) {
      dropped?.throwIfAborted();
      if (error instanceof SessionEndedError || error instanceof NotJsonError) throw error;
      throw deadline.signal.aborted ? new NoAnswerInTimeError(this.baseUrl, timeout) : new UnreachableError(this.baseUrl);
    } finally {
      deadline.clear();
    }
    dropped?.throwIfAborted();
    const parsed = jsonOf(text, this.baseUrl, response.status);
    if (!response.ok) {
      const issues = Array.isArray(parsed?.errors) ? (parsed.errors as ProblemIssue[]) : [];
      const detail = typeof parsed?.detail === 'string' ? parsed.detail : undefined;
      throw new ProblemError(detail ?? `${method} ${path} answered ${response.status}`, response.status, issues);
    }
    return parsed as T;
  }

  async eventTypes({ signal }: ReadOptions = {}): Promise<EventType[]> {
    return (await this.#call<{ data: EventType[] }>('GET', '/v1/event-types', undefined, signal)).data;
  }

  /** Every subscription of the consumer, page after page (one holds them all unless the server's cap was lowered since). */
  async subscriptions({ signal }: ReadOptions = {}): Promise<Subscription[]> {
    const all: Subscription[] = [];
    for (let after: string | null = null; ; ) {
      const page: { data: Subscription[]; next?: string | null; hasMore?: boolean } = await this.#call(
        'GET',
        `/v1/subscriptions${after ? `?after=${encodeURIComponent(after)}` : ''}`,
        undefined,
        signal,
      );
      all.push(...page.data);
      if (!page.hasMore || !page.next) return all;
      after = page.next;
    }
  }

  /** The transports the server mounts; an older server, without the route, is taken to mount a webhook transport only. */
  async transports({ signal }: ReadOptions = {}): Promise<MountedTransport[]> {
    try {
      return (await this.#call<{ data: MountedTransport[] }>('GET', '/v1/transports', undefined, signal)).data;
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

  /** A new signing secret for webhook subscription `id`, and until when the one it replaces goes on signing (null: not at all). */
  rotateSecret(id: string): Promise<{ secret: string; previousSecretExpiresAt: string | null }> {
    return this.#call('POST', `/v1/subscriptions/${encodeURIComponent(id)}/secret/rotate`, {});
  }

  /** A page of the deliveries of subscription `id` (see DeliveriesQuery), and the `before` of the next one (null: it is the last). */
  deliveries(id: string, { status = '', before, limit = 20, signal }: DeliveriesQuery = {}): Promise<{ data: Delivery[]; next: number | null }> {
    const query = new URLSearchParams({ limit: String(limit), ...(status ? { status } : {}), ...(before !== undefined ? { before: String(before) } : {}) });
    return this.#call('GET', `/v1/subscriptions/${encodeURIComponent(id)}/deliveries?${query}`, undefined, signal);
  }

  /** The deliveries of subscription `id` made since `since` (ms), newest first: at most `pages` pages of 200. */
  async deliveriesSince(id: string, since: number, { pages = 10, signal }: ReadOptions & { pages?: number } = {}): Promise<Delivery[]> {
    const all: Delivery[] = [];
    let before: number | undefined;
    for (let page = 0; page < pages; page++) {
      const { data, next } = await this.deliveries(id, { before, limit: 200, signal });
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
  async lastReplay(id: string, { signal }: ReadOptions = {}): Promise<Replay | undefined> {
    try {
      return await this.#call<Replay>('GET', `/v1/subscriptions/${encodeURIComponent(id)}/replay`, undefined, signal);
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
   * calls `onState` with `reconnecting` and opens a new one after a jittered exponential backoff (at least the
   * `Retry-After` of the answer, when it has one; at once on `retryNow`, which drops the try under way, too, while it
   * has no stream yet), resuming after the last event seen (`lastEventId`), so that no event is missed or seen twice;
   * with `open` once a stream is open. A try whose
   * answer does not come within the timeout fails as one that got no connection does, and so does one answered
   * with something else than an event stream; a stream that sends nothing for `idleTimeout` (no event, no
   * keep-alive: a half-dead connection, a proxy that holds it) is dropped and resumed so too. Throws SessionEndedError
   * when the token is refused or a stream ends for it (expired, revoked), and an Error for any other end (a 403, a
   * 404, a 401 that is not Herald's: NotJsonError). Returns once `signal` aborts, or the client is closed.
   */
  async stream(
    until: AbortSignal,
    onEvent: (event: TailEvent) => void,
    onState: (state: TailState) => void = () => {},
  ): Promise<void> {
    const signal = AbortSignal.any([until, this.#closed.signal]);
    const backoff = new ReconnectBackoff({});
    // The position the next stream resumes after: the `id` of the last frame seen (an event's seq, or where a `ready` or `reset` frame put it).
    let position: string | undefined;
    let failures = 0;
    // What retryNow ends, for a fresh try at once: the try under way while it has no stream yet, or the wait for the next one.
    let current: AbortController | undefined;
    const retryNow = () => current?.abort();
    while (!signal.aborted) {
      const attempt = new AbortController();
      current = attempt;
      let opened = false;
      try {
        // Returns once its signal aborts: the tail's, or retryNow's, after which a fresh try begins (never two side by side).
        await this.#streamOnce(AbortSignal.any([signal, attempt.signal]), position, {
          position: (id) => {
            position = id;
          },
          event: onEvent,
          open: () => {
            opened = true;
            current = undefined;
            backoff.reset();
            onState({ state: 'open' });
          },
        });
      } catch (error) {
        // A try dropped by retryNow is no failure: nothing is said of it.
        if (signal.aborted || attempt.signal.aborted) continue;
        if (!(error instanceof StreamInterrupted)) throw error;
        const { retryAfter, silentFor } = error.options;
        failures = opened ? 0 : failures + 1;
        const wake = new AbortController();
        current = wake;
        onState({ state: 'reconnecting', failures, reason: error.message, ...(silentFor ? { silentFor } : {}), retryNow });
        await pause(Math.max(retryAfter ?? 0, backoff.next()), AbortSignal.any([signal, wake.signal]));
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
    // The timeout is for the answer's headers alone: once they came, the stream stays open as long as it sends something within idleTimeout.
    const timeout = this.timeout;
    const idleTimeout = this.idleTimeout;
    const deadline = deadlineOf(timeout);
    const silence = new AbortController();
    let response: Response;
    try {
      response = await this.#ask(
        `/v1/stream?${query}`,
        { headers: { accept: 'text/event-stream' } },
        AbortSignal.any([signal, deadline.signal, silence.signal]),
      );
    } catch (error) {
      if (error instanceof SessionEndedError || error instanceof NotJsonError) throw error;
      if (signal.aborted) return;
      throw new StreamInterrupted((deadline.signal.aborted ? new NoAnswerInTimeError(this.baseUrl, timeout) : new UnreachableError(this.baseUrl)).message);
    } finally {
      deadline.clear();
    }
    if (passingStatus(response.status)) {
      await response.body?.cancel().catch(() => {});
      throw new StreamInterrupted(streamRefusal(this.baseUrl, response.status), { retryAfter: retryAfterOf(response.headers.get('retry-after')) });
    }
    if (!response.ok || !response.body) {
      const detail = jsonOf(await response.text().catch(() => ''), this.baseUrl, response.status)?.detail;
      throw new Error(`The live tail answered ${response.status}${typeof detail === 'string' && detail ? `: ${detail}` : ''}`);
    }
    const contentType = response.headers.get('content-type') ?? '';
    if (!/^text\/event-stream\b/i.test(contentType)) {
      // A proxy's page, a website at the wrong address: not the stream, which a later try may get.
      await response.body.cancel().catch(() => {});
      throw new StreamInterrupted(notAStream(this.baseUrl, response.status, contentType));
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let received = false;
    let quiet: ReturnType<typeof setTimeout> | undefined;
    for (;;) {
      let chunk: ReadableStreamReadResult<string>;
      try {
        if (idleTimeout > 0) quiet = setTimeout(() => silence.abort(), idleTimeout);
        chunk = await reader.read();
      } catch (error) {
        if (signal.aborted) return;
        if (silence.signal.aborted) {
          const reason = received ? `the stream sent nothing for ${durationOf(idleTimeout)}` : silentStream(this.baseUrl, idleTimeout);
          throw new StreamInterrupted(reason, { silentFor: idleTimeout });
        }
        throw new StreamInterrupted(`the connection dropped: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        clearTimeout(quiet);
      }
      if (chunk.done) throw new StreamInterrupted('the stream closed without an end frame');
      // Open once something came (Herald sends its first frame at once): a stream that never sends a byte is a try that got none.
      if (!received) on.open();
      received = true;
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
          const { reason, message } = objectOf(field('data')) ?? {};
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
