/** An event type as `GET /v1/event-types` lists it. */
export interface EventType {
  name: string;
  description?: string;
  schema?: unknown;
}

/** A subscription as the API shows it (secrets only when just made). */
export interface Subscription {
  id: string;
  transport: string;
  types: string[];
  status: string;
  config: Record<string, unknown>;
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
  attempts: Attempt[];
}

/** The portal token was refused (401): the session expired or was revoked. */
export class SessionEndedError extends Error {}

/** The consumer routes of a Herald server, called with a portal token. */
export class PortalApi {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (response.status === 401) throw new SessionEndedError();
    const text = await response.text();
    const parsed = text ? JSON.parse(text) : undefined;
    if (!response.ok) throw new Error(parsed?.detail ?? `${method} ${path} answered ${response.status}`);
    return parsed as T;
  }

  async eventTypes(): Promise<EventType[]> {
    return (await this.#call<{ data: EventType[] }>('GET', '/v1/event-types')).data;
  }

  async subscriptions(): Promise<Subscription[]> {
    return (await this.#call<{ data: Subscription[] }>('GET', '/v1/subscriptions')).data;
  }

  createSubscription(input: { transport: string; types: string[]; config: Record<string, unknown> }): Promise<Subscription> {
    return this.#call('POST', '/v1/subscriptions', input);
  }

  updateSubscription(id: string, change: { status?: 'active' | 'paused'; types?: string[] }): Promise<Subscription> {
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

  async replay(id: string, after: number): Promise<void> {
    await this.#call('POST', `/v1/subscriptions/${encodeURIComponent(id)}/replay`, { after });
  }

  /**
   * Reads `GET /v1/stream` (SSE) with the token in a header, never in the URL, calling `onEvent` for each
   * event until `signal` aborts. Throws SessionEndedError when the token is refused or the stream ends for it.
   */
  async stream(signal: AbortSignal, onEvent: (event: { seq: string; type: string; data: string }) => void): Promise<void> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/v1/stream?types=**`, { headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' }, signal });
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
    if (response.status === 401) throw new SessionEndedError();
    if (!response.ok || !response.body) throw new Error(`The live tail answered ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const field = (name: string) => frame.split('\n').find((line) => line.startsWith(`${name}: `))?.slice(name.length + 2) ?? '';
          const type = field('event');
          if (type === 'end') throw new SessionEndedError();
          if (field('id') && type && type !== 'ready' && type !== 'reset') onEvent({ seq: field('id'), type, data: field('data') });
          end = buffer.indexOf('\n\n');
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
  }
}
