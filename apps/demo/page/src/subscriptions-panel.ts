import { type DemoSession, type Delivery, describeProblem, type restApi, type Subscription } from './demo-api.js';

type RestApi = ReturnType<typeof restApi>;

function cell(text: string, title?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (title) td.title = title;
  return td;
}

function button(text: string, onClick: () => void, testId?: string): HTMLButtonElement {
  const node = document.createElement('button');
  node.type = 'button';
  node.className = 'secondary';
  node.textContent = text;
  if (testId) node.dataset.testid = testId;
  node.addEventListener('click', onClick);
  return node;
}

const shortTime = (iso: string | null) => (iso ? new Date(iso).toLocaleTimeString() : '');

/** The demo consumer's subscriptions: create, delete, and the delivery attempts of webhook ones. */
export class SubscriptionsPanel {
  readonly #body: HTMLTableSectionElement;
  readonly #api: RestApi;
  readonly #report: (text: string, ok: boolean) => void;
  readonly #inboxUrl: string;
  /** Webhook subscriptions whose attempts are shown. */
  readonly #open = new Set<string>();

  constructor(options: {
    body: HTMLTableSectionElement;
    form: HTMLFormElement;
    transport: HTMLSelectElement;
    types: HTMLInputElement;
    /** The form offers every transport but the push ones whose destination it does not ask for: webhooks go to the inbox. */
    transports: DemoSession['transports'];
    /** Where webhook subscriptions made here deliver: the demo's inbox. */
    inboxUrl: string;
    api: RestApi;
    report: (text: string, ok: boolean) => void;
  }) {
    this.#body = options.body;
    this.#api = options.api;
    this.#report = options.report;
    this.#inboxUrl = options.inboxUrl;
    for (const { name, kind } of options.transports) if (kind !== 'push' || name === 'webhook') options.transport.append(new Option(name, name));
    options.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const types = options.types.value.split(',').map((type) => type.trim()).filter(Boolean);
      // The optional payload filter (docs/guides/filters.md), as JSON.
      const filterText = options.form.querySelector<HTMLInputElement>('[data-testid="subscribe-filter"]')?.value.trim() ?? '';
      let filter: unknown;
      try {
        filter = filterText === '' ? undefined : JSON.parse(filterText);
      } catch {
        return this.#report('the filter is not JSON', false);
      }
      void this.#create(options.transport.value, types, filter);
    });
    void this.refresh();
    setInterval(() => void this.refresh(), 5000);
  }

  async refresh(): Promise<void> {
    const { status, body } = await this.#api.subscriptions();
    if (status !== 200) return;
    const rows: HTMLTableRowElement[] = [];
    for (const subscription of body.data) {
      rows.push(this.#row(subscription));
      if (this.#open.has(subscription.id)) rows.push(await this.#deliveriesRow(subscription));
    }
    this.#body.replaceChildren(...rows);
  }

  async #create(transport: string, types: string[], filter?: unknown): Promise<void> {
    const { status, body } = await this.#api.subscribe(transport, types, transport === 'webhook' ? { url: this.#inboxUrl } : {}, filter);
    if (status === 201) this.#report(`subscribed: ${body.id} (${transport})`, true);
    else this.#report(`subscribing failed: ${describeProblem(body)}`, false);
    await this.refresh();
  }

  #row(subscription: Subscription): HTMLTableRowElement {
    const row = document.createElement('tr');
    row.dataset.subscription = subscription.id;
    const actions = document.createElement('td');
    if (subscription.transport === 'webhook') {
      actions.append(
        button(this.#open.has(subscription.id) ? 'hide attempts' : 'attempts', () => {
          if (!this.#open.delete(subscription.id)) this.#open.add(subscription.id);
          void this.refresh();
        }),
      );
    }
    actions.append(
      button('delete', async () => {
        const { status, body } = await this.#api.unsubscribe(subscription.id);
        this.#report(status === 204 ? `deleted ${subscription.id}` : `deleting failed: ${describeProblem(body)}`, status === 204);
        await this.refresh();
      }),
    );
    const target = typeof subscription.config.url === 'string' ? subscription.config.url : '';
    row.append(
      cell(`…${subscription.id.slice(-8)}`, subscription.id),
      cell(subscription.transport, target),
      cell(subscription.types.join(', ') + (subscription.filter ? ` where ${JSON.stringify(subscription.filter)}` : '')),
      cell(subscription.status),
      actions,
    );
    return row;
  }

  async #deliveriesRow(subscription: Subscription): Promise<HTMLTableRowElement> {
    const row = document.createElement('tr');
    row.className = 'deliveries';
    const td = document.createElement('td');
    td.colSpan = 5;
    row.append(td);
    const { status, body } = await this.#api.deliveries(subscription.id);
    if (status !== 200) {
      td.textContent = `attempts unavailable: ${describeProblem(body)}`;
      return row;
    }
    if (body.data.length === 0) {
      td.textContent = 'no deliveries yet';
      return row;
    }
    const table = document.createElement('table');
    const head = document.createElement('tr');
    for (const title of ['seq', 'status', 'attempts', 'last answer', 'took', 'error', 'next attempt', '']) {
      const th = document.createElement('th');
      th.textContent = title;
      head.append(th);
    }
    table.append(head);
    for (const delivery of body.data) table.append(this.#deliveryRow(delivery));
    td.append(table);
    return row;
  }

  #deliveryRow(delivery: Delivery): HTMLTableRowElement {
    const last = delivery.attempts.at(-1);
    const row = document.createElement('tr');
    const retry = document.createElement('td');
    retry.append(
      button('retry', async () => {
        const { status, body } = await this.#api.retry(delivery.id);
        this.#report(status < 300 ? `retrying delivery of #${delivery.eventSeq}` : `retry failed: ${describeProblem(body)}`, status < 300);
        setTimeout(() => void this.refresh(), 500);
      }),
    );
    row.append(
      cell(`#${delivery.eventSeq}`),
      cell(delivery.status),
      cell(String(delivery.attemptCount)),
      cell(last?.responseStatus != null ? String(last.responseStatus) : '—'),
      cell(last ? `${last.durationMs} ms` : '—'),
      cell(last?.error ?? ''),
      cell(shortTime(delivery.nextAttemptAt)),
      retry,
    );
    return row;
  }
}
