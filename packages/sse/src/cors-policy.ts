/** Which other origins may open the stream (EventSource from another site). */
export interface SseCorsOptions {
  /** Allowed origins, e.g. `['https://app.example.com']`, or `'*'` for any. */
  origins: readonly string[] | '*';
  /** Allow cookies and `Authorization` (EventSource's `withCredentials`). The origin is then echoed, never `*`. @default false */
  credentials?: boolean;
  /** How long a browser may cache a preflight answer, in seconds. @default 600 */
  maxAge?: number;
}

/** The CORS answer for one origin. */
export class CorsPolicy {
  readonly #origins: ReadonlySet<string> | '*';
  readonly #credentials: boolean;
  readonly #maxAge: number;

  constructor(options: SseCorsOptions) {
    if (options.origins !== '*') {
      for (const origin of options.origins) {
        let parsed: URL | undefined;
        try {
          parsed = new URL(origin);
        } catch {}
        if (parsed?.origin !== origin) throw new Error(`sse cors: "${origin}" is not an origin like https://app.example.com`);
      }
    }
    this.#origins = options.origins === '*' ? '*' : new Set(options.origins);
    this.#credentials = options.credentials ?? false;
    this.#maxAge = options.maxAge ?? 600;
  }

  /** Headers for a response to a request from `origin`; none when it is not allowed. */
  headers(origin: string | undefined): Record<string, string> {
    const vary: Record<string, string> = this.#origins === '*' && !this.#credentials ? {} : { Vary: 'Origin' };
    if (origin === undefined || (this.#origins !== '*' && !this.#origins.has(origin))) return vary;
    return {
      ...vary,
      'Access-Control-Allow-Origin': this.#origins === '*' && !this.#credentials ? '*' : origin,
      ...(this.#credentials ? { 'Access-Control-Allow-Credentials': 'true' } : {}),
    };
  }

  /** Headers for a preflight (`OPTIONS`): what a stream request may send. */
  preflightHeaders(origin: string | undefined): Record<string, string> {
    const headers = this.headers(origin);
    if (headers['Access-Control-Allow-Origin'] === undefined) return headers;
    return {
      ...headers,
      'Access-Control-Allow-Methods': 'GET',
      'Access-Control-Allow-Headers': 'Authorization, Last-Event-ID, Cache-Control, Accept',
      'Access-Control-Max-Age': String(this.#maxAge),
    };
  }
}
