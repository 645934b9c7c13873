/** What `GET /demo/session` tells the page. */
export interface DemoSession {
  consumer: string;
  /** The demo consumer's API key: the page calls the real REST API with it. */
  consumerKey: string;
  /** The end of the log when the page loaded: where the streams start, so nothing after it is missed. */
  latestSeq: number;
  inboxUrl: string;
  transports: string[];
  eventTypes: { name: string; description?: string; example: unknown }[];
}

/** An answer: its status and JSON body (a problem document when it failed). */
export interface Answer<T = any> {
  status: number;
  body: T;
}

async function call<T>(method: string, path: string, body?: unknown, key?: string): Promise<Answer<T>> {
  const response = await fetch(path, {
    method,
    headers: {
      ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
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

/** The REST API with the demo consumer's key. */
export function restApi(key: string) {
  return {
    subscriptions: () => call<{ data: Subscription[] }>('GET', '/v1/subscriptions', undefined, key),
    subscribe: (transport: string, types: string[], config: Record<string, unknown> = {}, filter?: unknown) =>
      call<Subscription>('POST', '/v1/subscriptions', { transport, types, config, ...(filter !== undefined ? { filter } : {}) }, key),
    unsubscribe: (id: string) => call('DELETE', `/v1/subscriptions/${encodeURIComponent(id)}`, undefined, key),
    deliveries: (id: string) => call<{ data: Delivery[] }>('GET', `/v1/subscriptions/${encodeURIComponent(id)}/deliveries?limit=10`, undefined, key),
    retry: (deliveryId: string) => call('POST', `/v1/deliveries/${encodeURIComponent(deliveryId)}/retry`, undefined, key),
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
