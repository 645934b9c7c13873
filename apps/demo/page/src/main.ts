import { type EventStream, HeraldSocket, openEventStream, pollEvents, type StreamedEvent, type StreamReset } from '@herald/client';
import { type DemoSession, describeProblem, loadSession, publish, restApi, streamToken } from './demo-api.js';
import { EventLog, type Receipt } from './event-log.js';
import { LatencyChart } from './latency-chart.js';
import { SubscriptionsPanel } from './subscriptions-panel.js';

type TransportKey = 'websocket' | 'sse' | 'poll' | 'webhook';

function byTestId<T extends Element>(id: string): T {
  const node = document.querySelector<T>(`[data-testid="${id}"]`);
  if (!node) throw new Error(`no element with data-testid="${id}"`);
  return node;
}

function setState(id: string, state: 'connecting' | 'live' | 'reconnecting' | 'disconnected', text: string = state): void {
  const node = byTestId<HTMLElement>(id);
  node.dataset.state = state;
  node.textContent = text;
}

/** Says how a form's request went, in the line under that form. */
function report(id: string, text: string, ok: boolean): void {
  const result = byTestId<HTMLElement>(id);
  result.textContent = text;
  result.className = `result ${ok ? 'ok' : 'error'}`;
}

const session: DemoSession = await loadSession();
/** When this page published each event, by event id: the start of its publish-to-receipt latency. */
const publishedAt = new Map<string, number>();
/** When each panel was last reconnected by hand: events published before it and received after it were replayed. */
const reconnectedAt: Partial<Record<TransportKey, number>> = {};
const chart = new LatencyChart(byTestId<SVGSVGElement>('latency-chart'), [
  { key: 'websocket', label: 'WebSocket', color: '#2563eb' },
  { key: 'sse', label: 'SSE', color: '#0d9488' },
  { key: 'poll', label: 'Polling', color: '#9333ea' },
  { key: 'webhook', label: 'Webhook', color: '#c2410c' },
]);
const logs: Record<TransportKey, EventLog> = {
  websocket: new EventLog(byTestId('ws-log')),
  sse: new EventLog(byTestId('sse-log')),
  poll: new EventLog(byTestId('poll-log')),
  webhook: new EventLog(byTestId('webhook-log')),
};

interface ReceivedEvent {
  seq: number;
  id: string;
  type: string;
  time: string;
}

/** Shows an event in a panel, with its latency from publish (or from its `time`, for events published elsewhere). */
function received(transport: TransportKey, event: ReceivedEvent, at: number, webhook?: Pick<Receipt, 'signature' | 'receipt'>): void {
  const published = publishedAt.get(event.id);
  const latencyMs = Math.max(0, at - (published ?? Date.parse(event.time)));
  const resumed = published !== undefined && published < (reconnectedAt[transport] ?? 0);
  // Replayed events waited out the disconnect: they would say nothing about delivery latency.
  if (published !== undefined && !resumed) chart.add(transport, latencyMs, at);
  logs[transport].add({
    seq: event.seq,
    type: event.type,
    id: event.id,
    latencyMs,
    estimated: published === undefined,
    resumed,
    ...webhook,
  });
}

/** A panel whose connection can be dropped and restored; it resumes after the last seq it saw. */
interface ResumablePanel {
  connect(): void;
  disconnect(): void;
}

function toggle(testId: string, transport: TransportKey, panel: ResumablePanel, position: () => number): void {
  const log = logs[transport];
  const button = byTestId<HTMLButtonElement>(testId);
  let connected = true;
  button.addEventListener('click', () => {
    connected = !connected;
    if (connected) {
      reconnectedAt[transport] = Date.now();
      log.note(`reconnecting: resume after #${position()}`);
      panel.connect();
    } else {
      log.note(`disconnected after #${position()}`);
      panel.disconnect();
    }
    button.textContent = connected ? 'Disconnect' : 'Reconnect';
  });
}

/** The WebSocket panel: a HeraldSocket with an ad hoc subscription to every type. */
class WebSocketPanel implements ResumablePanel {
  position = session.latestSeq;
  #socket: HeraldSocket | undefined;

  connect(): void {
    setState('ws-status', 'connecting');
    const socket = new HeraldSocket({ url: `${location.origin}/v1/ws`, token: streamToken });
    socket.on('subscribed', () => setState('ws-status', 'live'));
    socket.on('close', ({ reconnecting }) => {
      if (reconnecting) setState('ws-status', 'reconnecting');
    });
    socket.on('reset', ({ reason, after }) => {
      logs.websocket.note(`reset (${reason}): going on after #${after}`);
      this.position = after;
    });
    socket.on('error', ({ code, message }) => logs.websocket.note(`error ${code}: ${message}`));
    socket.subscribe(
      ['**'],
      (event) => {
        this.position = event.seq;
        received('websocket', event, Date.now());
      },
      { after: this.position },
    );
    this.#socket = socket;
  }

  disconnect(): void {
    this.#socket?.close();
    this.#socket = undefined;
    setState('ws-status', 'disconnected');
  }
}

/** The SSE panel: an EventSource through `openEventStream`, reopened with a fresh token when it fails for good. */
class SsePanel implements ResumablePanel {
  position = session.latestSeq;
  #stream: EventStream | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #generation = 0;

  connect(): void {
    setState('sse-status', 'connecting');
    const generation = ++this.#generation;
    void streamToken().then(
      (token) => {
        if (generation !== this.#generation) return;
        this.#stream = openEventStream(
          { url: location.origin, types: ['**'], token, after: this.position },
          {
            open: () => setState('sse-status', 'live'),
            event: (event: StreamedEvent) => {
              this.position = event.seq;
              received('sse', event, Date.now());
            },
            reset: ({ reason, latest }) => {
              logs.sse.note(`reset (${reason}): going on after #${latest}`);
              this.position = latest;
            },
            error: ({ closed }) => {
              setState('sse-status', 'reconnecting');
              // The EventSource retries by itself, with the token in its URL; once that is refused, start over.
              if (closed) this.#reopen(generation);
            },
          },
        );
      },
      () => this.#reopen(generation),
    );
  }

  #reopen(generation: number): void {
    if (generation !== this.#generation) return;
    this.#stream?.close();
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => this.connect(), 1000);
  }

  disconnect(): void {
    this.#generation++;
    clearTimeout(this.#retry);
    this.#stream?.close();
    this.#stream = undefined;
    setState('sse-status', 'disconnected');
  }
}

/** The long-polling panel: `pollEvents` polling every type; disconnecting aborts the poll in flight. */
class PollPanel implements ResumablePanel {
  position = session.latestSeq;
  #stop: AbortController | undefined;

  connect(): void {
    const stop = new AbortController();
    this.#stop = stop;
    setState('poll-status', 'connecting');
    void this.#follow(stop.signal);
  }

  async #follow(signal: AbortSignal): Promise<void> {
    const state = (value: 'live' | 'reconnecting') => {
      if (!signal.aborted) setState('poll-status', value);
    };
    // pollEvents tells nothing of its requests: this fetch shows whether they go through. A poll waits at the server for the next event.
    const watched: typeof fetch = (input, init) => {
      state('live');
      return fetch(input, init).then(
        (response) => {
          if (!response.ok) state('reconnecting');
          return response;
        },
        (error: unknown) => {
          state('reconnecting');
          throw error;
        },
      );
    };
    const onReset = ({ reason, latest }: StreamReset) => {
      logs.poll.note(`reset (${reason}): going on after #${latest}`);
      this.position = latest;
    };
    try {
      for await (const event of pollEvents({ url: location.origin, types: ['**'], token: streamToken, after: this.position, signal, fetch: watched, onReset })) {
        this.position = event.seq;
        received('poll', event, Date.now());
      }
    } catch (error) {
      // Refused for good (its stream token could not be renewed): start over, as the SSE panel does.
      if (signal.aborted) return;
      state('reconnecting');
      logs.poll.note(`polling stopped (${error instanceof Error ? error.message : String(error)}): starting over`);
      setTimeout(() => {
        if (!signal.aborted) void this.#follow(signal);
      }, 1000);
    }
  }

  disconnect(): void {
    this.#stop?.abort();
    this.#stop = undefined;
    setState('poll-status', 'disconnected');
  }
}

/** What the inbox received, streamed by the demo server (`GET /demo/inbox/stream`). */
interface InboxEntry {
  receivedAt: number;
  verified: boolean;
  subscriptionId?: string;
  problem?: string;
  event?: Partial<ReceivedEvent> & { data?: unknown };
}

/** The start of the demo an inbox id (`<start>-<n>`) is of. */
const startOf = (receipt: string) => receipt.split('-')[0];

/**
 * The webhook panel: the inbox's stream, resumed after the last request shown, by the EventSource itself
 * (`Last-Event-ID`) or, once it has given up (the demo answered 503 while it stopped), by a new one (`?after=`).
 */
function followInbox(): void {
  let last = '';
  const open = () => {
    const source = new EventSource(`/demo/inbox/stream?after=${encodeURIComponent(last)}`);
    source.addEventListener('open', () => setState('webhook-status', 'live'));
    source.addEventListener('error', () => {
      setState('webhook-status', 'reconnecting');
      if (source.readyState === EventSource.CLOSED) setTimeout(open, 1000);
    });
    source.addEventListener('message', ({ data, lastEventId }) => {
      if (last !== '' && startOf(last) !== startOf(lastEventId)) logs.webhook.note('the demo started again: what its inbox received since');
      last = lastEventId;
      showInboxEntry(JSON.parse(data as string) as InboxEntry, lastEventId);
    });
  };
  open();
}

function showInboxEntry(entry: InboxEntry, receipt: string): void {
  const event = entry.event;
  if (event?.type === 'herald.endpoint.verification') {
    logs.webhook.note(`endpoint verification challenge ${entry.verified ? 'answered' : 'refused'}`);
    return;
  }
  const signature = entry.verified
    ? { verified: true, detail: `✓ signature verified (${entry.subscriptionId?.slice(-8) ?? ''})` }
    : { verified: false, detail: `✗ ${entry.problem ?? 'not verified'}` };
  const shown = { seq: event?.seq ?? 0, id: event?.id ?? '', type: event?.type ?? '(refused)', time: event?.time ?? '' };
  received('webhook', shown, entry.receivedAt, { signature, receipt });
}

function publishForm(): void {
  const type = byTestId<HTMLSelectElement>('publish-type');
  const data = byTestId<HTMLTextAreaElement>('publish-data');
  const form = document.getElementById('publish-form') as HTMLFormElement;
  for (const eventType of session.eventTypes) {
    type.append(new Option(eventType.description ? `${eventType.name}: ${eventType.description}` : eventType.name, eventType.name));
  }
  const example = () => {
    data.value = JSON.stringify(session.eventTypes.find((eventType) => eventType.name === type.value)?.example ?? {});
  };
  type.addEventListener('change', example);
  example();

  const publishOnce = async (eventType = type.value, text = data.value): Promise<boolean> => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      report('publish-result', 'The data is not JSON', false);
      return false;
    }
    const id = `demo_${crypto.randomUUID()}`;
    publishedAt.set(id, Date.now());
    const { status, body } = await publish({ type: eventType, data: parsed, id });
    if (status === 202 || status === 200) {
      report('publish-result', `published #${body.seq} (${body.id})`, true);
      return true;
    }
    publishedAt.delete(id);
    report('publish-result', `refused (${status}): ${describeProblem(body)}`, false);
    return false;
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void publishOnce();
  });
  byTestId<HTMLButtonElement>('publish-burst').addEventListener('click', async () => {
    // One of each type in turn, with its example data.
    for (let n = 0; n < 10; n++) {
      const eventType = session.eventTypes[n % session.eventTypes.length];
      if (eventType && !(await publishOnce(eventType.name, JSON.stringify(eventType.example)))) return;
    }
  });
}

publishForm();
const websocketPanel = new WebSocketPanel();
const ssePanel = new SsePanel();
const pollPanel = new PollPanel();
websocketPanel.connect();
ssePanel.connect();
pollPanel.connect();
toggle('ws-toggle', 'websocket', websocketPanel, () => websocketPanel.position);
toggle('sse-toggle', 'sse', ssePanel, () => ssePanel.position);
toggle('poll-toggle', 'poll', pollPanel, () => pollPanel.position);
followInbox();
(document.getElementById('consumer-name') as HTMLElement).textContent = session.consumer;
new SubscriptionsPanel({
  body: byTestId('subscriptions'),
  form: document.getElementById('subscribe-form') as HTMLFormElement,
  transport: byTestId('subscribe-transport'),
  types: byTestId('subscribe-types'),
  transports: session.transports,
  inboxUrl: session.inboxUrl,
  api: restApi(session),
  report: (text, ok) => report('subscribe-result', text, ok),
});
