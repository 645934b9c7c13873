import type { EventFilter } from './event-filter.js';
import type { StreamedEventOf, StreamReset } from './event-stream.js';
import { ReconnectBackoff } from './reconnect-backoff.js';
import { passingStatus, retryAfterOf } from './retry-after.js';

/**
 * A credential for {@link pollEvents}: an API key or a stream token, or a function that returns a fresh stream
 * token. The function is given the poll's `signal` (one that never aborts when the poll has none), to cancel its
 * own work (a `fetch` to your backend) when the polling ends.
 */
export type PollToken = string | ((signal: AbortSignal) => string | Promise<string>);

export interface PollEventsOptions {
  /** The Herald server, e.g. `https://api.example.com`. */
  url: string;
  /** Event types and patterns for an ad hoc poll; or give `subscription`. */
  types?: readonly string[];
  /** A durable `poll` subscription's id: each poll after the first acknowledges the events of the one before. */
  subscription?: string;
  /**
   * An API key or a stream token (`hs_…`), sent as `Authorization: Bearer`; or a function that returns a
   * fresh stream token, called for the first poll and again when a poll is refused with 401 (the token
   * expired): polling goes on from where it was. A 401 for a token just fetched throws {@link PollError},
   * and the function's own error when it throws. It is given `signal` (`token: (signal) => fetchStreamToken(signal)`)
   * to cancel its work with: an abort ends the polling at once all the same, without waiting for the function.
   */
  token: PollToken;
  /** Start after this seq. @default a durable subscription's cursor; for `types`, the end of the log (only new events) */
  after?: number;
  /** Seconds each poll waits for an event when there is none yet. @default the server's (25 s unless configured) */
  wait?: number;
  /** At most this many events per poll. @default 100 */
  limit?: number;
  /**
   * A payload filter (docs/guides/filters.md), sent with every poll as the URL-encoded JSON `?filter=`:
   * only the events it lets through are yielded, and `next` moves past the others; with `subscription`, on
   * top of its own filter. A filter the server refuses (an unknown operator or path) throws a
   * {@link PollError} with status 422 and the problem's `errors` (the path of the mistake).
   * @default none: every event of the types
   */
  filter?: EventFilter;
  /** @default '/v1/poll' */
  path?: string;
  /** Ends the polling: the loop returns (a `for await` ends) without an error. */
  signal?: AbortSignal;
  /**
   * Milliseconds before polling again after a network error, a timeout, a 408, a 429 or a 5xx: the longest
   * wait before the first retry. Each failure in a row doubles that longest wait, up to `maxRetryDelay`, and
   * each wait is random below it (exponential backoff with full jitter, so that clients of a server that was
   * down do not all come back at once); it starts over after an answer. A `Retry-After` answer wins.
   * @default 1000
   */
  retryDelay?: number;
  /** The longest wait between two retries, in ms (see `retryDelay`). @default 30000 */
  maxRetryDelay?: number;
  /**
   * Milliseconds a poll may take, answer and body, before it is given up (a server that hangs, a host that
   * is gone) and polled again after the retry wait (`retryDelay`), from the same `after`: nothing is lost.
   * Keep it above `wait`, or polls that wait for an event are cut short and asked again.
   * @default `wait` + 15 s; without `wait`, 75 s (60 s, the server's default cap of `wait`, + 15 s)
   */
  requestTimeout?: number;
  /**
   * Told when `after` could not be served as asked (the answer's `reset`), before the events of that answer.
   * `expired`: `after` is older than the log keeps, and retention pruned the events between `latest` (which
   * is `after`) and `oldest`; polling goes on from `after` all the same, with what the log still holds after it
   * (events a type keeps longer or by compaction, then everything from `oldest` on), so nothing kept is
   * skipped. `ahead`: `after` is past the end of the log (the log was replaced: a new database); polling goes
   * on from `latest`, the end of the log.
   */
  onReset?(reset: StreamReset): void;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** A refused poll's problem+json answer. */
export interface PollProblem {
  type?: string;
  title?: string;
  detail?: string;
  /** A 422's issues: where in the request (`["wait"]`, `["filter", "data.n", "$regex"]`) and what is wrong there. */
  errors?: { path?: (string | number)[]; message?: string }[];
  /** A 401 for a credential that was good once: why it is no longer. */
  reason?: 'token-expired' | 'revoked';
}

/**
 * A poll that will not succeed by trying again: 400-499 but 408 and 429 (bad parameters, credentials, scope,
 * an unknown subscription). Its message gives the problem's `detail` and its first issues, e.g.
 * `polling answered 422: The request query is not valid: wait: seconds: a non-negative number…`.
 */
export class PollError extends Error {
  override readonly name = 'PollError';
  constructor(
    readonly status: number,
    /** The problem+json answer, when there was one. */
    readonly problem: PollProblem | undefined,
  ) {
    super([`polling answered ${status}`, ...reasonsOf(problem)].join(': '));
  }
}

/** The problem's `detail`, and its first three issues (`path: message`) that the detail does not already say. */
function reasonsOf(problem: PollProblem | undefined): string[] {
  const detail = typeof problem?.detail === 'string' ? problem.detail : '';
  const issues: string[] = [];
  for (const issue of Array.isArray(problem?.errors) ? problem.errors : []) {
    const message = issue?.message;
    if (typeof message !== 'string' || detail.includes(message)) continue;
    issues.push(Array.isArray(issue.path) && issue.path.length > 0 ? `${issue.path.join('.')}: ${message}` : message);
  }
  const more = issues.length > 3 ? `; and ${issues.length - 3} more` : '';
  return [detail, issues.slice(0, 3).join('; ') + more].filter((reason) => reason !== '');
}

interface PollPage<TEvent> {
  data: TEvent[];
  next: number;
  reset?: StreamReset;
}

/** The longest delay `setTimeout` takes: a longer one fires at once. */
const longestTimer = 2 ** 31 - 1;

/** A signal that never aborts, for a token function when polling has no `signal`. */
const neverAborted = new AbortController().signal;

/** Resolves with what `work` returns, or with undefined at once when `signal` aborts or has aborted: the caller stops waiting for it. */
function unlessAborted<T>(work: () => T | Promise<T>, signal: AbortSignal | undefined): Promise<T | undefined> {
  if (signal?.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const aborted = () => resolve(undefined);
    signal?.addEventListener('abort', aborted, { once: true });
    new Promise<T>((settle) => settle(work())).then(resolve, reject).finally(() => signal?.removeEventListener('abort', aborted));
  });
}

/** Resolves after `ms`, or at once when `signal` aborts or has aborted. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.min(ms, longestTimer));
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Long-polls Herald's `GET /v1/poll`, following `next` from one answer to the next, and yields each
 * event in `seq` order. On a durable subscription the next poll acknowledges an answer only once the loop
 * has taken every event of it, so an event is never skipped (it may come again after a crash: dedupe by `id`).
 * Network errors, polls that outlast `requestTimeout` and the answers {@link passingStatus} takes (408, 429, 5xx) are
 * retried, with exponential backoff (`retryDelay`, `maxRetryDelay`); other refusals throw {@link PollError}. Aborting `signal` ends the loop at once, whatever it is doing.
 *
 * ```ts
 * for await (const event of pollEvents<EventMap>({ url, token, types: ['order.*'], signal })) render(event);
 * ```
 */
export async function* pollEvents<TMap = Record<string, unknown>>(options: PollEventsOptions): AsyncGenerator<StreamedEventOf<TMap>, void, undefined> {
  const request = options.fetch ?? globalThis.fetch;
  const { signal, retryDelay = 1_000, maxRetryDelay = 30_000, requestTimeout = ((options.wait ?? 60) + 15) * 1_000 } = options;
  const backoff = new ReconnectBackoff({ initialDelay: retryDelay, maxDelay: maxRetryDelay });
  const base = new URL(options.path ?? '/v1/poll', options.url);
  if (options.types !== undefined) base.searchParams.set('types', options.types.join(','));
  if (options.subscription !== undefined) base.searchParams.set('subscription', options.subscription);
  if (options.wait !== undefined) base.searchParams.set('wait', String(options.wait));
  if (options.limit !== undefined) base.searchParams.set('limit', String(options.limit));
  if (options.filter !== undefined) base.searchParams.set('filter', JSON.stringify(options.filter));
  const given = options.token;
  // Undefined once `signal` aborted, whether or not the function has settled.
  const renew = typeof given === 'function' ? () => unlessAborted(() => given(signal ?? neverAborted), signal) : undefined;
  const first = renew ? await renew() : (given as string);
  if (first === undefined) return;
  let token = first;
  /** Whether the token in use was fetched after a 401, and has not been taken yet. */
  let renewed = false;
  let after = options.after;
  while (!signal?.aborted) {
    const url = new URL(base);
    if (after !== undefined) url.searchParams.set('after', String(after));
    let answer: { page: PollPage<StreamedEventOf<TMap>> } | { retryIn: number } | { renew: () => Promise<string | undefined> };
    // Aborted by `signal`, or once the poll took `requestTimeout`.
    const attempt = new AbortController();
    const giveUp = () => attempt.abort();
    signal?.addEventListener('abort', giveUp, { once: true });
    const timer = setTimeout(giveUp, Math.min(requestTimeout, longestTimer));
    try {
      const response = await request(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, signal: attempt.signal });
      if (response.status === 200) answer = { page: (await response.json()) as PollPage<StreamedEventOf<TMap>> };
      else {
        const problem = await response.json().catch(() => undefined);
        if (response.status === 401 && renew && !renewed) answer = { renew };
        else if (!passingStatus(response.status)) throw new PollError(response.status, problem);
        else answer = { retryIn: retryAfterOf(response.headers.get('retry-after')) || backoff.next() };
      }
    } catch (error) {
      if (signal?.aborted) return;
      if (error instanceof PollError) throw error;
      answer = { retryIn: backoff.next() };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', giveUp);
    }
    if ('renew' in answer) {
      const fresh = await answer.renew();
      if (fresh === undefined) return;
      token = fresh;
      renewed = true;
      continue;
    }
    if ('retryIn' in answer) {
      await pause(answer.retryIn, signal);
      continue;
    }
    renewed = false;
    backoff.reset();
    const { page } = answer;
    if (page.reset) options.onReset?.(page.reset);
    for (const event of page.data) yield event;
    after = page.next;
  }
}
