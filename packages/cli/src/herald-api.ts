import { CliError } from './cli-error.js';

/** Where a command finds Herald, and with which credential. */
export interface ServerOptions {
  /** `HERALD_URL` @default 'http://127.0.0.1:3000' */
  url: string;
  /** `HERALD_KEY`: an API key. */
  key?: string;
}

/** `base` and an absolute API path, keeping a path prefix of `base` (`https://host/herald` + `/v1/events`). */
export function apiUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}${path}`;
}

const causes: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'the connection was reset',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be resolved',
  EHOSTUNREACH: 'host unreachable',
  ETIMEDOUT: 'the connection timed out',
};

/** Why a request got no answer, in a few words. */
export function unreachableReason(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'no answer in time';
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  if (cause?.code && causes[cause.code]) return causes[cause.code] as string;
  return cause?.message ?? (error instanceof Error ? error.message : String(error));
}

interface ProblemBody {
  [extension: string]: unknown;
  type?: string;
  title?: string;
  detail?: string;
  errors?: { path?: (string | number)[]; message?: string }[];
}

/** A refused request as one line: the problem's detail, and its validation issues. */
function problemError(status: number, body: ProblemBody | undefined, url: string): CliError {
  const code = body?.type?.replace('urn:herald:problem:', '') ?? 'request-failed';
  const detail = body?.detail ?? body?.title;
  if (detail === undefined) return new CliError(code, `${url} answered ${status}`, status, body);
  // The issues the detail does not say already, e.g. which field failed its schema.
  const issues = (body?.errors ?? [])
    .filter((issue) => issue.message && !detail.includes(issue.message))
    .map((issue) => `${(issue.path ?? []).join('.') || '(root)'}: ${issue.message}`);
  const shown = issues.length > 0 ? `${detail}: ${issues.join('; ')}` : detail;
  if (status === 401) return new CliError('unauthorized', `the key was refused: ${shown}`, status, body);
  return new CliError(code, `${shown} (${status})`, status, body);
}

/** Herald's REST API for the commands: JSON in and out, every failure a one-line {@link CliError}. */
export class HeraldApi {
  readonly url: string;
  readonly key: string;

  constructor({ url, key }: ServerOptions) {
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new CliError('bad-input', `--url must be an http(s) URL, not "${url}"`);
    if (!key) throw new CliError('unauthorized', 'no API key: pass --key or set HERALD_KEY', 401);
    this.url = url;
    this.key = key;
  }

  /** Checks that Herald answers and takes the key, before a command begins a long wait. */
  async check(): Promise<void> {
    await this.get('/v1/event-types');
  }

  get<T>(path: string): Promise<T> {
    return this.request('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request('POST', path, body);
  }

  delete(path: string): Promise<void> {
    return this.request('DELETE', path);
  }

  /** `fetch`, with the key and the reason a request got no answer. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.key}`);
    try {
      return await fetch(apiUrl(this.url, path), { signal: AbortSignal.timeout(30_000), ...init, headers });
    } catch (error) {
      throw new CliError('unreachable', `cannot reach Herald at ${this.url}: ${unreachableReason(error)}`, 503);
    }
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.fetch(path, {
      method,
      ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    });
    if (!response.ok) throw await responseError(response);
    const text = await response.text();
    try {
      return (text ? JSON.parse(text) : undefined) as T;
    } catch {
      throw new CliError('not-herald', `${this.url} did not answer like Herald (${response.status}, not JSON)`, 502);
    }
  }
}

/** The problem of a failed response, as the commands report it. */
export async function responseError(response: Response): Promise<CliError> {
  const text = await response.text().catch(() => '');
  let body: ProblemBody | undefined;
  try {
    body = JSON.parse(text) as ProblemBody;
  } catch {
    body = undefined;
  }
  return problemError(response.status, body, response.url);
}
