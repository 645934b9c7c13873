/** What `GET /demo/session` tells the page. */
export interface DemoSession {
  consumer: string;
  /** The demo consumer's API key: the page calls the real REST API with it. */
  consumerKey: string;
  /** The end of the log when the page loaded: where the streams start, so nothing after it is missed. */
  latestSeq: number;
  inboxUrl: string;
  /** Every transport the demo mounts, as `GET /v1/transports` lists them: `push` ones deliver to the destination their config names. */
  transports: { name: string; kind: 'push' | 'stream' | 'pull' }[];
  eventTypes: { name: string; description?: string; example: unknown }[];
}

/** An answer: its status and JSON body (a problem document when it failed). */
export interface Answer<T = any> {
  status: number;
  body: T;
}

/** A request to the demo server; status 0 when it did not answer (it is stopped, or restarting). */
async function call<T>(method: string, path: string, body?: unknown, key?: string): Promise<Answer<T>> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers: {
        ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    return { status: 0, body: { detail: 'the demo server did not answer' } as T };
  }
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

export async function loadSession(): Promise<DemoSession> {
  const { status, body } = await call<DemoSession>('GET', '/demo/session');
  if (status !== 200) throw new Error(`GET /demo/session answered ${status}`);
  return body;
}

/** A fresh stream token for the demo consumer, for the WebSocket and the EventSource. */
export async function streamToken(): Promise<string> {
  const { status, body } = await call<{ token: string }>('POST', '/demo/stream-token');
  if (status !== 201) throw new Error(`POST /demo/stream-token answered ${status}`);
  return body.token;
}

/** Publishes through the demo server, which holds the publishing rights the page does not. */
export function publish(input: { type: string; data: unknown; id: string }): Promise<Answer<{ id: string; seq: number }>> {
  return call('POST', '/demo/publish', input);
}

/**
 * The REST API with the demo consumer's key. The demo revokes that key when it starts again: a request
 * refused with 401 fetches the new key from `GET /demo/session` and is sent once more.
 */
export function restApi(session: DemoSession) {
  let key = session.consumerKey;
  const asConsumer = async <T>(method: string, path: string, body?: unknown): Promise<Answer<T>> => {
    const answer = await call<T>(method, path, body, key);
    if (answer.status !== 401) return answer;
    const renewed = await loadSession().catch(() => undefined);
    if (renewed === undefined || renewed.consumerKey === key) return answer;
    key = renewed.consumerKey;
    return call<T>(method, path, body, key);
  };
  return {
    subscriptions: () => asConsumer<{ data: Subscription[] }>('GET', '/v1/subscriptions'),
    subscribe: (transport: string, types: string[], config: Record<string, unknown> = {}, filter?: unknown) =>
      asConsumer<Subscription>('POST', '/v1/subscriptions', { transport, types, config, ...(filter !== undefined ? { filter } : {}) }),
    unsubscribe: (id: string) => asConsumer('DELETE', `/v1/subscriptions/${encodeURIComponent(id)}`),
    deliveries: (id: string) => asConsumer<{ data: Delivery[] }>('GET', `/v1/subscriptions/${encodeURIComponent(id)}/deliveries?limit=10`),
    retry: (deliveryId: string) => asConsumer('POST', `/v1/deliveries/${encodeURIComponent(deliveryId)}/retry`),
  };
}

export interface Subscription {
  id: string;
  transport: string;
  types: string[];
  status: string;
  config: Record<string, unknown>;
  filter?: Record<string, unknown>;
  createdAt: string;
}

export interface Delivery {
  id: string;
  eventSeq: number;
  status: string;
  attemptCount: number;
  nextAttemptAt: string | null;
  attempts: { attempt: number; status: string; responseStatus: number | null; durationMs: number; error: string | null; startedAt: string }[];
}

/** A problem document as one line: its detail and the first issues. */
export function describeProblem(body: unknown): string {
  if (typeof body !== 'object' || body === null) return String(body);
  const problem = body as { title?: string; detail?: string; errors?: { path: (string | number)[]; message: string }[] };
  const issues = (problem.errors ?? []).slice(0, 3).map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  return [problem.detail ?? problem.title ?? 'failed', ...issues].join(' · ');
}
