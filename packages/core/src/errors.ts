/** One validation issue, as zod reports it, with the path joined for humans. */
export interface Issue {
  path: (string | number)[];
  message: string;
  code?: string;
}

/** An RFC 9457 problem document. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: Issue[];
  [extension: string]: unknown;
}

/** Where a Herald error keeps the names of its classes, under a key every copy of this module shares. */
const classNamesKey = Symbol.for('herald.error.classes');

/**
 * The base of every error Herald throws on purpose. `code` is stable and machine-readable;
 * `status` is the HTTP status a server answers with.
 *
 * `instanceof` holds across copies of `@herald/core` in one process: two installed versions, or one loaded
 * twice (`herald serve` loads a project's TypeScript in a module namespace of its own). An error of a
 * transport's copy is then answered with its own problem type, and a store's refusal is known as one.
 */
export class HeraldError extends Error {
  override readonly name: string = 'HeraldError';
  declare readonly [classNamesKey]: readonly string[];

  /** `this` is the class on the right of `instanceof`: a subclass inherits this check. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: the class asked about, HeraldError or a subclass
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    const names = typeof value === 'object' && value !== null ? (value as { [classNamesKey]?: unknown })[classNamesKey] : undefined;
    // biome-ignore lint/complexity/noThisInStatic: as above
    return Array.isArray(names) && names.includes(this.name);
  }

  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly title = message,
  ) {
    super(message);
    Object.defineProperty(this, classNamesKey, { value: classNamesOf(new.target) });
  }

  /** Extra members for the problem document. */
  protected extensions(): Record<string, unknown> {
    return {};
  }

  /** Response headers that go with the problem, e.g. `Retry-After`. */
  headers(): Record<string, string> {
    return {};
  }

  toProblem(): Problem {
    return {
      type: `urn:herald:problem:${this.code}`,
      title: this.title,
      status: this.status,
      detail: this.message,
      ...this.extensions(),
    };
  }
}

/** Input that does not fit its schema: 422 with the issues. */
export class ValidationError extends HeraldError {
  override readonly name: string = 'ValidationError';
  constructor(
    message: string,
    readonly issues: Issue[],
    code = 'validation-failed',
    cause?: unknown,
  ) {
    super(code, 422, message, 'Validation failed');
    if (cause !== undefined) this.cause = cause;
  }
  protected override extensions() {
    return { errors: this.issues };
  }
}

export class UnknownEventTypeError extends ValidationError {
  override readonly name: string = 'UnknownEventTypeError';
  constructor(readonly eventType: string) {
    super(`Event type "${eventType}" is not in the catalog`, [{ path: ['type'], message: 'is not in the catalog' }], 'unknown-event-type');
  }
}

export class NotFoundError extends HeraldError {
  override readonly name: string = 'NotFoundError';
  constructor(what: string) {
    super('not-found', 404, `${what} was not found`, 'Not found');
  }
}

export class ConflictError extends HeraldError {
  override readonly name: string = 'ConflictError';
  constructor(message: string) {
    super('conflict', 409, message, 'Conflict');
  }
}

/** Why a credential that was good once is refused: its token expired, or it or the key that issued it was revoked. */
export const credentialEndReasons = ['token-expired', 'revoked'] as const;
export type CredentialEndReason = (typeof credentialEndReasons)[number];

/** No credential, or one the server refuses: 401, with `reason` when the credential was good once. */
export class UnauthorizedError extends HeraldError {
  override readonly name: string = 'UnauthorizedError';
  constructor(
    message = 'A valid API key is required: Authorization: Bearer <key>',
    readonly reason?: CredentialEndReason,
  ) {
    super('unauthorized', 401, message, 'Unauthorized');
  }
  protected override extensions() {
    return this.reason === undefined ? {} : { reason: this.reason };
  }
}

export class ForbiddenError extends HeraldError {
  override readonly name: string = 'ForbiddenError';
  constructor(message = 'This key may not do that') {
    super('forbidden', 403, message, 'Forbidden');
  }
}

/** A stream token called a route that only API keys may call: 403. */
export class StreamTokenForbiddenError extends HeraldError {
  override readonly name: string = 'StreamTokenForbiddenError';
  constructor() {
    super(
      'stream-token-forbidden',
      403,
      'A stream token may only read events (GET /v1/events, GET /v1/event-types and the streaming transports); use an API key',
      'Forbidden for stream tokens',
    );
  }
}

/** A portal token called a route outside its consumer's own ones (keys, publishing, admin routes): 403. */
export class PortalTokenForbiddenError extends HeraldError {
  override readonly name: string = 'PortalTokenForbiddenError';
  constructor() {
    super(
      'portal-token-forbidden',
      403,
      "A portal token may only act as its consumer: its subscriptions, their deliveries, the event types and its events; use an API key",
      'Forbidden for portal tokens',
    );
  }
}

/** Over a rate limit: 429 `rate-limited` with `Retry-After`, and any headers that describe the limit. */
export class RateLimitedError extends HeraldError {
  override readonly name: string = 'RateLimitedError';
  constructor(
    message: string,
    /** Seconds until the next request is let through. */
    readonly retryAfter: number,
    readonly limitHeaders: Readonly<Record<string, string>> = {},
  ) {
    super('rate-limited', 429, message, 'Too many requests');
  }
  override headers(): Record<string, string> {
    return { 'Retry-After': String(this.retryAfter), ...this.limitHeaders };
  }
}

/** Herald cannot do this now (the store is locked or refuses writes): 503 with `Retry-After`. */
export class UnavailableError extends HeraldError {
  override readonly name: string = 'UnavailableError';
  constructor(
    message: string,
    /** Seconds the client should wait before it tries again. */
    readonly retryAfter = 1,
    code = 'unavailable',
  ) {
    super(code, 503, message, 'Service unavailable');
  }
  override headers(): Record<string, string> {
    return { 'retry-after': String(this.retryAfter) };
  }
}

/** Why the store refused a write or a read: see {@link StoreUnavailableError}. */
export type StoreRefusal = 'locked' | 'full' | 'unavailable';

const storeRefusals: Record<StoreRefusal, { code: string; message: string }> = {
  locked: { code: 'store-locked', message: 'The database is locked by another process; try again shortly' },
  full: { code: 'store-full', message: 'The database is full; it takes no more writes until space is freed' },
  unavailable: { code: 'store-unavailable', message: 'The database is unavailable for now; try again shortly' },
};

/**
 * The store refused a write: another process held its lock for longer than the store waits (`locked`),
 * its disk or size limit is full (`full`), or it takes no writes for another reason (`unavailable`: an
 * I/O error, a read-only or damaged database, a lost connection). A read the database refuses so (a lost
 * connection, an I/O error, a damaged SQLite file) is `unavailable` too. 503 with `Retry-After`; `cause` is
 * the database's own error, for the log. Nothing of the refused write was stored.
 */
export class StoreUnavailableError extends UnavailableError {
  override readonly name: string = 'StoreUnavailableError';
  constructor(
    readonly refusal: StoreRefusal,
    cause: unknown,
  ) {
    const { code, message } = storeRefusals[refusal];
    super(message, 1, code);
    this.cause = cause;
  }
}

/** Turns any zod-style issue list into Herald issues. A record's key that fails says why, where zod says only "Invalid key in record". */
export function toIssues(
  issues: readonly { path: readonly PropertyKey[]; message: string; code?: string; issues?: readonly { message: string }[] }[],
): Issue[] {
  return issues.map((issue) => {
    const keyReasons = issue.code === 'invalid_key' ? (issue.issues ?? []).map((reason) => reason.message) : [];
    return {
      path: issue.path.map((key) => (typeof key === 'number' ? key : String(key))),
      message: keyReasons.length > 0 ? keyReasons.join('; ') : issue.message,
      ...(issue.code ? { code: issue.code } : {}),
    };
  });
}

/** The names of `target` and of the classes it extends, up to `Error`. */
function classNamesOf(target: abstract new (...args: never[]) => unknown): string[] {
  const names: string[] = [];
  for (let type = target; type !== Error && type.name !== ''; type = Object.getPrototypeOf(type)) names.push(type.name);
  return names;
}
