import { matchesPattern } from '@herald/client';
import { css, html, LitElement, nothing, type PropertyValues, svg, type TemplateResult } from 'lit';
import { type EndpointHealth, endpointHealth } from './endpoint-health.js';
import {
  type Delivery,
  defaultIdleTimeout,
  defaultTimeout,
  durationOf,
  type EventType,
  type MountedTransport,
  PortalApi,
  ProblemError,
  type ProblemIssue,
  type Replay,
  type ReplayStart,
  SessionEndedError,
  type Subscription,
  type TailEvent,
  type TailState,
  type TestAttempt,
} from './portal-api.js';

/** The comma-separated event types of a form's `types` field. */
function typesOf(form: HTMLFormElement): string[] {
  return String(new FormData(form).get('types') ?? '')
    .split(',')
    .map((type) => type.trim())
    .filter(Boolean);
}

/** A filter field the browser can tell is wrong before asking the server. */
class FilterInputError extends Error {}

/** The JSON object in the form's field `name`, or `undefined` when it is left empty; `refuse` makes the error when it is no JSON object. */
function jsonFieldOf(form: HTMLFormElement, name: string, refuse: (reason: string) => Error): Record<string, unknown> | undefined {
  const text = String(new FormData(form).get(name) ?? '').trim();
  if (!text) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw refuse(`is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw refuse('must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** The form's filter, or `undefined` when it is left empty. Throws FilterInputError. */
const filterOf = (form: HTMLFormElement) => jsonFieldOf(form, 'filter', (reason) => new FilterInputError(`The filter ${reason}, such as {"data.total": {"$gte": 100}}`));

/** The form's transport config, `{}` when it is left empty. */
const configOf = (form: HTMLFormElement) => jsonFieldOf(form, 'config', (reason) => new Error(`The config ${reason}`)) ?? {};

/** A problem's reasons, one `path: message` each. */
const reasonsOf = (issues: readonly ProblemIssue[]) => issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');

/** Why the filter was refused, when `error` is about the filter: the browser's reason, or the server's (422) for the `filter` member. */
function filterReason(error: unknown): string | undefined {
  if (error instanceof FilterInputError) return error.message;
  if (!(error instanceof ProblemError) || error.status !== 422) return undefined;
  const issues = error.issues.filter((issue) => issue.path[0] === 'filter');
  return issues.length > 0 ? `The server refused the filter: ${reasonsOf(issues)}` : undefined;
}

/** What went wrong, for the page: a problem's detail with the reasons it gives. */
function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error instanceof ProblemError && error.issues.length > 0 ? `${error.message}: ${reasonsOf(error.issues)}` : error.message;
}

/** The value of a `datetime-local` field (the browser's local time) as an ISO 8601 instant. */
function instantOf(local: string): string {
  const instant = new Date(local);
  if (Number.isNaN(instant.getTime())) throw new Error(`"${local}" is not a date and time`);
  return instant.toISOString();
}

type View = 'catalog' | 'subscriptions' | 'deliveries' | 'health' | 'tail';
const views: { id: View; label: string }[] = [
  { id: 'catalog', label: 'Catalog' },
  { id: 'subscriptions', label: 'Subscriptions' },
  { id: 'deliveries', label: 'Deliveries' },
  { id: 'health', label: 'Health' },
  { id: 'tail', label: 'Live tail' },
];

/** An instant as the Health chart's time axis shows it: its weekday and time of day, in the browser's time zone and locale (`Mon 14:05`). */
const clockOf = (ms: number) => new Date(ms).toLocaleString(undefined, { weekday: 'short', hour: 'numeric', minute: '2-digit' });

/** `1 attempt`, `3 attempts`. */
const attemptsOf = (count: number) => `${count} ${count === 1 ? 'attempt' : 'attempts'}`;

/**
 * How many attempts a delivery lists (`attempts`: every one kept, of every round), and, when a retry or a replay
 * started a new round since, how many the API counts in that latest round (`attemptCount`).
 */
function attemptsSummary(delivery: Delivery): string {
  const listed = delivery.attempts.length;
  return delivery.attemptCount === listed ? attemptsOf(listed) : `${attemptsOf(listed)} listed, ${delivery.attemptCount} in its latest round`;
}

/**
 * Where a subscription's events go, as its config names it, to tell it apart: a webhook's or a broker's URL
 * (which the API shows without credentials), the exchange or the subject; empty for a stream, which the consumer
 * connects to.
 */
function targetOf(config: Record<string, unknown>): string {
  const servers = Array.isArray(config.servers) ? config.servers.join(', ') : config.servers;
  const parts: [string, unknown][] = [
    ['', config.url],
    ['', servers],
    ['exchange ', config.exchange],
    ['routing key ', config.routingKey],
    ['subject ', config.subject],
  ];
  return parts
    .filter(([, value]) => typeof value === 'string' && value !== '')
    .map(([label, value]) => `${label}${value}`)
    .join(' · ');
}

/** A URL, say, that may wrap after each `/`, `?`, `&` and `#` (not inside `//`), rather than wherever its line ends. */
const breakable = (text: string) => text.split(/(?<=[/?&#])(?!\/)/).map((part, index) => (index === 0 ? part : html`<wbr>${part}`));

/** A subscription's id, and where its events go when its config names it: `sub_… (https://…)`. */
function named(subscription: Subscription): TemplateResult {
  const target = targetOf(subscription.config);
  return html`<code>${subscription.id}</code>${target ? html` (<code>${breakable(target)}</code>)` : nothing}`;
}

/** A signing secret shown once: of a subscription just made, or made by a rotation. */
interface ShownSecret {
  value: string;
  subscription: Subscription;
  /** A rotation's: until when the secret it replaced goes on signing alongside it (null: it stopped at once). */
  previousUntil?: string | null;
}

/** An action that waits for the user to confirm it. */
interface Confirmation {
  action: 'delete' | 'rotate';
  subscription: Subscription;
}

/** An event the live tail shows, and when it came (`Date.now()`). */
interface ShownEvent extends TailEvent {
  shownAt: number;
}

/**
 * How long, in ms, the deliveries view looks for the delivery of an event the live tail showed: a live event's
 * delivery is listed once its first attempt settles, well within that (a push transport's `timeout`, 15 s by default).
 */
const firstAttemptWait = 60_000;

/** Why a view loads the lists though they are loaded: it was put back in the page (`lists`), or Try again was pressed (`again`). */
type Reload = 'lists' | 'again';

/** The live tail's stream: being opened at first, open, waiting to open a new one, or ended (the view was left, or it failed for good). */
type TailStatus = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Tries in a row that got no stream before the live tail says why and what to check: one alone may be a restart. */
const tailFailuresExplained = 2;

/** ` · HTTP 200` for an attempt that got an answer; nothing for one that got none (refused, timed out) or went by another protocol. */
const httpStatus = (status: number | null) => (status === null ? '' : ` · HTTP ${status}`);

/**
 * `<herald-portal base-url="https://events.example.com" token="hp_…">`: a consumer's own portal, acting
 * with a portal token (`POST /v1/portal-sessions`). A new `token` or `base-url`, set at any time, starts afresh: what
 * the session before loaded goes, its live tail stops, and the view loads with the new one. Themed with CSS custom
 * properties: `--herald-accent`, `--herald-bg`, `--herald-fg`, `--herald-muted`, `--herald-border`, `--herald-danger`,
 * `--herald-radius`, `--herald-font`.
 */
export class HeraldPortal extends LitElement {
  static override properties = {
    baseUrl: { attribute: 'base-url' },
    token: {},
    transports: {},
    requestTimeout: { attribute: 'request-timeout', type: Number },
    tailIdleTimeout: { attribute: 'tail-idle-timeout', type: Number },
    view: { state: true },
    ended: { state: true },
    error: { state: true },
    loadFailed: { state: true },
    retrying: { state: true },
    types: { state: true },
    subscriptions: { state: true },
    selected: { state: true },
    deliveries: { state: true },
    statusFilter: { state: true },
    next: { state: true },
    secret: { state: true },
    confirming: { state: true },
    tail: { state: true },
    tailStatus: { state: true },
    tailProblem: { state: true },
    tailSilentFor: { state: true },
    health: { state: true },
    mounted: { state: true },
    createTransport: { state: true },
    filterErrors: { state: true },
    testResults: { state: true },
    replay: { state: true },
    loaded: { state: true },
  };

  /** Where the Herald API is. @default '' (this page's origin) */
  declare baseUrl: string;
  /** The transports offered when creating a subscription, comma-separated. @default '' (every transport the server mounts, `GET /v1/transports`) */
  declare transports: string;
  /**
   * How long the portal waits for Herald to answer a request, and the live tail for a stream's first answer, in ms;
   * then the view says that Herald did not answer in time. @default 15000
   */
  declare requestTimeout: number;
  /**
   * How long, in ms, the live tail's stream may send nothing, no event and no `: keep-alive` comment, before the tail
   * takes it for dropped (a half-dead connection, a proxy that holds it) and opens a new one, which resumes after the
   * last event shown. Keep it above the server's keep-alive interval (the SSE transport's `keepAlive`, 15 s by
   * default); 0 turns the check off, for a server that sends no keep-alive. @default 45000
   */
  declare tailIdleTimeout: number;
  declare view: View;
  /** Why no view is shown: `ended`, a token that worked expired or was revoked; `refused`, the token is missing or one the server never knew. */
  declare ended: 'ended' | 'refused' | undefined;
  declare error: string;
  /** Whether `error` says why the view could not load what it shows, which Try again loads again. */
  declare loadFailed: boolean;
  /** Whether the load Try again made is under way: the view says so, with Try again, which drops it for a fresh one. */
  declare retrying: boolean;
  declare types: EventType[];
  declare subscriptions: Subscription[];
  declare selected: string;
  declare deliveries: Delivery[];
  declare statusFilter: string;
  declare next: number | null;
  /** The signing secret shown once, and whose it is. */
  declare secret: ShownSecret | undefined;
  /** The delete or the rotation that asks to be confirmed. */
  declare confirming: Confirmation | undefined;
  declare tail: ShownEvent[];
  /** What the live tail's stream is doing; a new stream, after `reconnecting`, resumes after the last event shown. */
  declare tailStatus: TailStatus;
  /** Why the live tail got no stream for the last few tries, and what to check; empty while nothing needs saying. */
  declare tailProblem: string;
  /** While the live tail reconnects because its stream sent nothing for so long: how long, in ms. */
  declare tailSilentFor: number | undefined;
  declare health: { subscription: Subscription; health: EndpointHealth }[];
  declare mounted: MountedTransport[];
  declare createTransport: string;
  /** Why a filter was refused, by form: `create`, or the id of the subscription edited. */
  declare filterErrors: Record<string, string>;
  /** The last test event's attempt, by subscription id. */
  declare testResults: Record<string, TestAttempt>;
  /** The running or last replay of the selected subscription. */
  declare replay: Replay | undefined;
  /** Whether the event types, the subscriptions and the transports the server mounts are loaded (`yes`), being loaded at first, or failed to load (and were never loaded). */
  declare loaded: 'yes' | 'loading' | 'failed';
  #token = '';
  /** Whether a token was given (the property set, or the attribute), an empty one too: until then the element waits for one. */
  #tokenGiven = false;
  #tailAbort: AbortController | undefined;
  /** Opens the live tail's next stream now, rather than at the end of its wait. */
  #tailRetryNow: (() => void) | undefined;
  /** The client of the session shown: of the base URL and the token it began with. */
  #client: PortalApi | undefined;
  /** The load of the view under way (see #load), which the next one drops. */
  #viewLoad: AbortController | undefined;
  /** Looks again, while the deliveries view shows it, at a running replay or at deliveries being sent. */
  #nextLook: ReturnType<typeof setTimeout> | undefined;
  /** Whether the deliveries view shows pages loaded with Older, which a look at a running replay keeps. */
  #olderShown = false;
  /** Counts the loads of deliveries begun: one that ends after a later one began is dropped. */
  #deliveriesLoads = 0;

  constructor() {
    super();
    // Lit's reactive properties must not be class fields (they would shadow its accessors).
    this.baseUrl = '';
    this.transports = '';
    this.requestTimeout = defaultTimeout;
    this.tailIdleTimeout = defaultIdleTimeout;
    this.view = 'subscriptions';
    this.#forget();
  }

  /**
   * The portal token (`hp_…`); set it again, from a script say, to start a new session. Until it is given (the
   * property set, or the attribute), the element waits for it and asks nothing; given empty, it says there is no
   * session. Removing the attribute goes back to waiting. @default '' (none given yet: waiting for one)
   */
  get token(): string {
    return this.#token;
  }

  set token(value: string) {
    // Lit sets null when the attribute is removed.
    const given = value !== null && value !== undefined;
    // An empty token given while waiting is no change of value, but one of what the element shows.
    if (given !== this.#tokenGiven) this.requestUpdate();
    this.#tokenGiven = given;
    this.#token = value ?? '';
  }

  /** Drops what a session loaded and showed: each view as it is before its first load. */
  #forget(): void {
    this.ended = undefined;
    this.error = '';
    this.loadFailed = false;
    this.retrying = false;
    this.types = [];
    this.subscriptions = [];
    this.selected = '';
    this.deliveries = [];
    this.statusFilter = '';
    this.next = null;
    this.secret = undefined;
    this.confirming = undefined;
    this.tail = [];
    this.tailStatus = 'closed';
    this.tailProblem = '';
    this.tailSilentFor = undefined;
    this.health = [];
    this.mounted = [];
    this.createTransport = '';
    this.filterErrors = {};
    this.testResults = {};
    this.replay = undefined;
    this.loaded = 'loading';
    this.#olderShown = false;
    this.#tailRetryNow = undefined;
    this.#viewLoad?.abort();
    this.#viewLoad = undefined;
  }

  /** The client of the session shown: kept, for it knows whether the server took the token. */
  get #api(): PortalApi {
    this.#client ??= this.#newClient();
    return this.#client;
  }

  #newClient(): PortalApi {
    const client = new PortalApi(this.baseUrl, this.token, this.requestTimeout);
    client.idleTimeout = this.tailIdleTimeout;
    return client;
  }

  /**
   * Whether the base URL or the token is not the one the session shown began with (or none began yet); while no
   * token is given, whether a session is shown, which goes.
   */
  #sessionChanged(): boolean {
    if (!this.#tokenGiven) return this.#client !== undefined;
    return this.#client?.baseUrl !== this.baseUrl || this.#client.token !== this.token;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    if (this.#sessionChanged()) this.#begin();
    // Taken out of the page and put back: the view takes up what it stopped doing (the live tail, looking at deliveries), with the lists as they are now.
    else if (this.#client && !this.ended) this.#show(this.view, 'lists');
  }

  override willUpdate(changed: PropertyValues<this>): void {
    // Out of the page, a change waits: connectedCallback begins the session once it is back.
    if (!this.isConnected) return;
    if (this.#sessionChanged()) this.#begin();
    else if (this.#client) {
      if (changed.has('requestTimeout')) this.#client.timeout = this.requestTimeout;
      if (changed.has('tailIdleTimeout')) this.#client.idleTimeout = this.tailIdleTimeout;
    }
  }

  /**
   * Begins a session with the base URL and the token as they are now: stops what the one before did (its live
   * tail, its requests under way, its looks at deliveries), drops what it loaded and showed, and loads the view.
   */
  #begin(): void {
    this.#tailAbort?.abort();
    this.#tailAbort = undefined;
    clearTimeout(this.#nextLook);
    this.#deliveriesLoads += 1;
    this.#client?.close();
    this.#client = undefined;
    this.#forget();
    if (!this.#tokenGiven) return;
    this.#client = this.#newClient();
    // No token, no session: said at once, without asking.
    if (!this.token) this.ended = 'refused';
    else this.#show(this.view);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.#tailAbort?.abort();
    clearTimeout(this.#nextLook);
  }

  /**
   * Runs an API step; a 401 ends the session, any other failure is shown, with Try again when the step is the `load`
   * of the view. A load dropped meanwhile (aborted) says nothing: the one that dropped it is what the view shows.
   */
  async #run(step: () => Promise<void>, load?: AbortSignal): Promise<void> {
    this.error = '';
    this.loadFailed = false;
    try {
      await step();
    } catch (error) {
      if (load?.aborted) return;
      if (error instanceof SessionEndedError) {
        this.ended = error.ended ? 'ended' : 'refused';
        this.#tailAbort?.abort();
      } else {
        this.error = messageOf(error);
        this.loadFailed = load !== undefined;
      }
    }
  }

  /** The event types, the subscriptions and the transports, unless `signal` drops the load. */
  async #loadLists(signal: AbortSignal): Promise<void> {
    let loaded: [EventType[], Subscription[], MountedTransport[]];
    try {
      loaded = await Promise.all([this.#api.eventTypes({ signal }), this.#api.subscriptions({ signal }), this.#api.transports({ signal })]);
    } catch (error) {
      if (!signal.aborted && this.loaded !== 'yes') this.loaded = 'failed';
      throw error;
    }
    const [types, subscriptions, mounted] = loaded;
    this.types = types;
    this.subscriptions = subscriptions;
    this.mounted = mounted;
    this.loaded = 'yes';
    if (!this.selected) this.selected = subscriptions.find((subscription) => this.#isPush(subscription))?.id ?? '';
  }

  /** Shows `view`, and loads what it shows (see #load). */
  #show(view: View, reload?: Reload): void {
    this.view = view;
    this.confirming = undefined;
    if (view !== 'deliveries') clearTimeout(this.#nextLook);
    if (view === 'tail') this.#startTail();
    else this.#tailAbort?.abort();
    void this.#load(view, reload);
  }

  /**
   * Loads what `view` shows: the event types, the subscriptions and the transports, which every view but the live
   * tail stands on, unless they are loaded (`reload` loads them again anyway), then the deliveries or the health.
   * What fails is shown with Try again, which loads it all `again`: the one way back for every view. One load at a
   * time: each drops the one under way, whose requests end and which says nothing, so that none waits on a load
   * that hangs (Herald takes the connections and says nothing, until `request-timeout`).
   */
  async #load(view: View, reload?: Reload): Promise<void> {
    this.#viewLoad?.abort();
    this.#viewLoad = undefined;
    const loadLists = reload !== undefined || (view !== 'tail' && this.loaded !== 'yes');
    const loads = loadLists || view === 'deliveries' || view === 'health';
    this.retrying = loads && reload === 'again';
    if (!loads) return;
    const load = new AbortController();
    this.#viewLoad = load;
    const { signal } = load;
    await this.#run(async () => {
      if (loadLists) await this.#loadLists(signal);
      if (view === 'deliveries') await this.#loadDeliveries(undefined, signal);
      if (view === 'health') await this.#loadHealth(signal);
    }, signal);
    if (this.#viewLoad !== load) return;
    this.#viewLoad = undefined;
    this.retrying = false;
  }

  /** The transports to offer: the `transports` attribute's, or else every one the server mounts. */
  #offered(): string[] {
    const named = this.transports.split(',').map((name) => name.trim()).filter(Boolean);
    return named.length > 0 ? named : this.mounted.map((transport) => transport.name);
  }

  /** Whether the server sends the events of `subscription` itself, so that it has deliveries, and can be sent a test event. */
  #isPush(subscription: Subscription): boolean {
    return this.mounted.find((transport) => transport.name === subscription.transport)?.kind === 'push';
  }

  /** Drops the reason shown by the filter field of form `key`. */
  #forgetFilterError(key: string): void {
    if (!(key in this.filterErrors)) return;
    const { [key]: _shown, ...others } = this.filterErrors;
    this.filterErrors = others;
  }

  /** Runs a step that sends the filter of form `key`; a refused filter is shown by its field, not as the page's error. */
  async #withFilter(key: string, step: () => Promise<void>): Promise<void> {
    this.#forgetFilterError(key);
    try {
      await step();
    } catch (error) {
      const reason = filterReason(error);
      if (reason === undefined) throw error;
      this.filterErrors = { ...this.filterErrors, [key]: reason };
      // To the field, whose description now says why: a keyboard user is where the fix goes.
      await this.updateComplete;
      this.renderRoot.querySelector<HTMLTextAreaElement>(`textarea[aria-describedby~="filter-error-${key}"]`)?.focus();
    }
  }

  #showDeliveriesOf(id: string): void {
    this.selected = id;
    this.#show('deliveries');
  }

  /** A form's submit handler: runs `step` with the form instead of navigating. */
  #onSubmit(step: (form: HTMLFormElement) => Promise<void>): (event: Event) => void {
    return (event) => {
      event.preventDefault();
      void this.#run(() => step(event.target as HTMLFormElement));
    };
  }

  /** A deliveries filter's change handler: sets it, then loads the first page again. */
  #onPick(set: (value: string) => void): (event: Event) => void {
    return (event) => {
      set((event.target as HTMLSelectElement).value);
      void this.#load('deliveries');
    };
  }

  /** A page of the deliveries of the subscription selected (the first, or the one `before`), unless `signal` drops the load. */
  async #loadDeliveries(before?: number, signal?: AbortSignal): Promise<void> {
    if (!this.selected) return;
    clearTimeout(this.#nextLook);
    const load = ++this.#deliveriesLoads;
    const [page, replay] = await Promise.all([
      this.#api.deliveries(this.selected, { status: this.statusFilter, before, signal }),
      before === undefined ? this.#api.lastReplay(this.selected, { signal }) : this.replay,
    ]);
    if (load !== this.#deliveriesLoads) return;
    this.deliveries = before === undefined ? page.data : [...this.deliveries, ...page.data];
    this.next = page.next;
    this.#olderShown = before !== undefined;
    this.#showReplay(replay);
  }

  /**
   * Shows `replay`, and looks again in a second while it runs, or while the first page of deliveries has one
   * being sent or due soon (a replay ends once it has made its deliveries, before they are sent), or lacks the
   * delivery of an event the live tail just showed (see #unlisted): at that page too, unless older pages are shown,
   * which the reload would drop.
   */
  #showReplay(replay: Replay | undefined): void {
    this.replay = replay;
    clearTimeout(this.#nextLook);
    if (!this.isConnected || this.view !== 'deliveries' || (replay?.status !== 'running' && !this.#sending() && !this.#unlisted())) return;
    this.#nextLook = setTimeout(() => {
      const subscription = this.selected;
      if (this.view !== 'deliveries' || this.replay?.id !== replay?.id || !subscription) return;
      void this.#run(() => (this.#olderShown ? this.#lookAtReplay(subscription) : this.#loadDeliveries()));
    }, 1_000);
  }

  /** The selected subscription while it is active, and the view shows the first page of its deliveries. */
  #activeFirstPage(): Subscription | undefined {
    if (this.#olderShown) return undefined;
    return this.subscriptions.find((subscription) => subscription.id === this.selected && subscription.status === 'active');
  }

  /** Whether the first page of deliveries shows one being sent, or due within a minute, to an active subscription. */
  #sending(): boolean {
    const soon = Date.now() + 60_000;
    return (
      this.#activeFirstPage() !== undefined &&
      this.deliveries.some((delivery) => delivery.status === 'pending' && Date.parse(delivery.nextAttemptAt ?? '') < soon)
    );
  }

  /**
   * The newest event the live tail showed within firstAttemptWait, of a type the active subscription selected takes,
   * that is after every delivery on the first page (of every status): its delivery, in its first attempt, is not
   * listed yet (docs/protocol/webhooks.md, "managing deliveries").
   */
  #unlisted(): ShownEvent | undefined {
    const subscription = this.#activeFirstPage();
    if (!subscription || this.statusFilter) return undefined;
    const since = Date.now() - firstAttemptWait;
    const listed = Math.max(0, ...this.deliveries.map((delivery) => delivery.eventSeq));
    return this.tail.find((event) => event.shownAt > since && Number(event.seq) > listed && subscription.types.some((pattern) => matchesPattern(pattern, event.type)));
  }

  /** Shows the replay of `subscription` as it is now, unless another subscription was selected meanwhile. */
  async #lookAtReplay(subscription: string): Promise<void> {
    const replay = await this.#api.lastReplay(subscription);
    if (this.selected === subscription) this.#showReplay(replay);
  }

  /**
   * The health of every push subscription over the last 24 hours (the others have no deliveries; one deleted
   * meanwhile, 404, is left out), unless `signal` drops the load.
   */
  async #loadHealth(signal: AbortSignal): Promise<void> {
    const now = Date.now();
    const rows: { subscription: Subscription; health: EndpointHealth }[] = [];
    for (const subscription of this.subscriptions.filter((subscription) => this.#isPush(subscription))) {
      try {
        rows.push({ subscription, health: endpointHealth(await this.#api.deliveriesSince(subscription.id, now - 86_400_000, { signal }), now) });
      } catch (error) {
        if (!(error instanceof ProblemError && error.status === 404)) throw error;
      }
    }
    this.health = rows;
  }

  #startTail(): void {
    this.#tailAbort?.abort();
    const abort = new AbortController();
    this.#tailAbort = abort;
    // A tail opened again starts afresh: the list of before would sit above what it missed meanwhile.
    this.tail = [];
    this.#showTailStatus('connecting');
    void this.#run(async () => {
      try {
        await this.#api.stream(
          abort.signal,
          (event) => {
            if (!abort.signal.aborted) this.tail = [{ ...event, shownAt: Date.now() }, ...this.tail].slice(0, 100);
          },
          (state) => {
            if (!abort.signal.aborted) this.#showTailStatus(state.state, state.state === 'reconnecting' ? state : undefined);
          },
        );
      } finally {
        // Ended for good, or left: no reconnect is under way (unless a newer tail has begun one).
        if (this.#tailAbort === abort) this.#showTailStatus('closed');
      }
    });
  }

  /** Shows what the live tail's stream does, and, while it waits to `reconnect`, why it got none when the last few tries all failed. */
  #showTailStatus(status: TailStatus, reconnect?: Extract<TailState, { state: 'reconnecting' }>): void {
    this.tailStatus = status;
    this.tailProblem = reconnect && reconnect.failures >= tailFailuresExplained ? reconnect.reason : '';
    this.tailSilentFor = reconnect?.silentFor;
    this.#tailRetryNow = reconnect?.retryNow;
  }

  async #create(form: HTMLFormElement): Promise<void> {
    // A secret shown before is not taken for the one of this subscription, whether it is made or refused.
    this.secret = undefined;
    await this.#withFilter('create', async () => {
      const data = new FormData(form);
      const transport = String(data.get('transport'));
      const types = typesOf(form);
      const config = transport === 'webhook' ? { url: String(data.get('url') ?? '').trim() } : configOf(form);
      const filter = filterOf(form);
      const created = await this.#api.createSubscription({ transport, types, config, ...(filter ? { filter } : {}) });
      if (typeof created.config.secret === 'string') this.secret = { value: created.config.secret, subscription: created };
      if (this.#isPush(created)) this.selected = created.id;
      form.reset();
      this.createTransport = '';
      this.subscriptions = await this.#api.subscriptions();
    });
  }

  async #setStatus(subscription: Subscription, status: 'active' | 'paused'): Promise<void> {
    await this.#api.updateSubscription(subscription.id, { status });
    this.subscriptions = await this.#api.subscriptions();
  }

  async #edit(subscription: Subscription, form: HTMLFormElement): Promise<void> {
    await this.#withFilter(subscription.id, async () => {
      await this.#api.updateSubscription(subscription.id, { types: typesOf(form), filter: filterOf(form) ?? null });
      this.subscriptions = await this.#api.subscriptions();
    });
  }

  async #sendTest(subscription: Subscription): Promise<void> {
    // The last result goes while the test is under way, so that an old one is never taken for the new.
    const { [subscription.id]: _last, ...others } = this.testResults;
    this.testResults = others;
    this.testResults = { ...others, [subscription.id]: await this.#api.sendTest(subscription.id) };
  }

  async #delete(subscription: Subscription): Promise<void> {
    await this.#api.deleteSubscription(subscription.id);
    if (this.selected === subscription.id) this.selected = '';
    if (this.secret?.subscription.id === subscription.id) this.secret = undefined;
    this.subscriptions = await this.#api.subscriptions();
  }

  async #rotate(subscription: Subscription): Promise<void> {
    this.secret = undefined;
    const { secret, previousSecretExpiresAt } = await this.#api.rotateSecret(subscription.id);
    this.secret = { value: secret, subscription, previousUntil: previousSecretExpiresAt };
  }

  /** Asks, in the row of `subscription`, to confirm `action`; the focus goes to Cancel. */
  async #confirm(action: Confirmation['action'], subscription: Subscription): Promise<void> {
    this.confirming = { action, subscription };
    await this.#focus('[data-testid="portal-confirm-cancel"]');
  }

  /** Drops the question asked, and takes the focus back to the button that asked it. */
  async #cancelConfirm(): Promise<void> {
    const asked = this.confirming;
    this.confirming = undefined;
    if (asked) await this.#focus(`tr[data-id="${CSS.escape(asked.subscription.id)}"] button[data-action="${asked.action}"]`);
  }

  /** Does what was confirmed. The focus goes where the work shows: the rotated row's button, or the list a row left. */
  #confirmed({ action, subscription }: Confirmation): void {
    this.confirming = undefined;
    if (action === 'rotate') {
      void this.#focus(`tr[data-id="${CSS.escape(subscription.id)}"] button[data-action="rotate"]`);
      void this.#run(() => this.#rotate(subscription));
    } else {
      void this.#focus('#subscriptions-title');
      void this.#run(() => this.#delete(subscription));
    }
  }

  /** Focuses the element of `selector` in the view, once it is rendered. */
  async #focus(selector: string): Promise<void> {
    await this.updateComplete;
    this.renderRoot.querySelector<HTMLElement>(selector)?.focus();
  }

  async #retry(delivery: Delivery): Promise<void> {
    await this.#api.retry(delivery.id);
    await this.#loadDeliveries();
  }

  async #replay(start: ReplayStart): Promise<void> {
    await this.#api.replay(this.selected, start);
    await this.#loadDeliveries();
  }

  async #cancelReplay(): Promise<void> {
    this.#showReplay(await this.#api.cancelReplay(this.selected));
  }

  override render(): TemplateResult {
    if (!this.#tokenGiven) {
      return html`<main class="ended" data-testid="portal-waiting">
        <h1>Event portal</h1>
        <p role="status">Waiting for a session…</p>
      </main>`;
    }
    if (this.ended === 'ended') {
      return html`<main class="ended" data-testid="portal-ended" role="alert">
        <h1>Session ended</h1>
        <p>This portal session has expired or was revoked. Open the portal again from the application that sent you here.</p>
      </main>`;
    }
    if (this.ended === 'refused') {
      return html`<main class="ended" data-testid="portal-no-session" role="alert">
        <h1>No portal session</h1>
        <p>This page has no valid portal session token. Open the portal from the application that sent you here: it makes a new session for you.</p>
      </main>`;
    }
    return html`<div class="portal">
      <header>
        <h1>Event portal</h1>
        <nav aria-label="Portal views">
          ${views.map(
            ({ id, label }) =>
              html`<button type="button" aria-current=${this.view === id ? 'page' : 'false'} @click=${() => this.#show(id)}>${label}</button>`,
          )}
        </nav>
      </header>
      ${this.#renderError()}
      <main>${this.#renderView()}</main>
    </div>`;
  }

  /**
   * What went wrong last; when it is why the view could not load, with Try again, whichever the view. While the load
   * Try again made is under way, the view says so, in a status there from the start, and keeps Try again (the same
   * button, which keeps the focus), which drops that load for a fresh one.
   */
  #renderError(): TemplateResult | typeof nothing {
    const offersTryAgain = this.loadFailed || this.retrying;
    if (!this.error && !offersTryAgain) return nothing;
    return html`<div class="failure">
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
      ${offersTryAgain
        ? html`<button type="button" data-testid="portal-try-again" @click=${() => this.#load(this.view, 'again')}>Try again</button>
            <p class="trying" role="status" data-testid="portal-trying-again">${this.retrying ? 'Trying again…' : ''}</p>`
        : nothing}
    </div>`;
  }

  #renderView(): TemplateResult {
    switch (this.view) {
      case 'catalog':
        return this.#renderCatalog();
      case 'subscriptions':
        return this.#renderSubscriptions();
      case 'deliveries':
        return this.#renderDeliveries();
      case 'health':
        return this.#renderHealth();
      case 'tail':
        return this.#renderTail();
    }
  }

  #renderCatalog(): TemplateResult {
    return html`<section data-testid="portal-catalog" aria-labelledby="catalog-title">
      <h2 id="catalog-title">Event types</h2>
      ${this.types.map(
        (type) => html`<article class="card">
          <h3>${type.name}</h3>
          <p>${type.description ?? 'No description.'}</p>
          <details>
            <summary>JSON Schema</summary>
            <pre>${JSON.stringify(type.schema ?? {}, null, 2)}</pre>
          </details>
          <details open>
            <summary>Example</summary>
            <pre>${JSON.stringify(type.example, null, 2)}</pre>
          </details>
        </article>`,
      )}
    </section>`;
  }

  /**
   * A filter's JSON field, with the reason it was refused, if it was, tied to it for assistive technology.
   * `help` shows how to write one (in the create form; the edit forms keep the table short).
   */
  #filterField(field: { key: string; value: string; testId: string; label: TemplateResult; help: boolean }): TemplateResult {
    const { key, testId } = field;
    const reason = this.filterErrors[key];
    const describedBy = [field.help ? `filter-help-${key}` : '', reason ? `filter-error-${key}` : ''].filter(Boolean).join(' ');
    return html`<label>${field.label}
        <textarea name="filter" rows="2" spellcheck="false" .value=${field.value}
          placeholder=${field.help ? '{"data.total": {"$gte": 100}}' : 'No filter: every event of its types'}
          aria-invalid=${reason ? 'true' : 'false'} aria-describedby=${describedBy || nothing} data-testid=${testId}
          @input=${() => this.#forgetFilterError(key)}></textarea>
      </label>
      ${field.help ? html`<p class="hint" id=${`filter-help-${key}`}>Optional. JSON, for example <code>{"data.country": "DE"}</code>; empty takes every event of its types.</p>` : nothing}
      ${reason ? html`<p class="field-error" id=${`filter-error-${key}`} role="alert" data-testid=${`${testId}-error`}>${reason}</p>` : nothing}`;
  }

  #renderReplay(): TemplateResult | typeof nothing {
    const replay = this.replay;
    if (!replay) return nothing;
    const made = `${replay.replayed.toLocaleString('en')} ${replay.replayed === 1 ? 'delivery' : 'deliveries'} made`;
    const range = `events after #${replay.after} up to #${replay.until}`;
    return html`<p class="replay" role="status" data-testid="portal-replay-status" data-status=${replay.status}>
      ${replay.status === 'running'
        ? html`<strong>Replay running</strong> · ${range} · every one up to #${replay.position} has its delivery · ${made}
            <button type="button" data-testid="portal-replay-cancel" @click=${() => this.#run(() => this.#cancelReplay())}>Cancel replay</button>`
        : html`<strong>Last replay ${replay.status}</strong> · ${range} · ${made}${replay.status === 'completed' ? nothing : ` · stopped at #${replay.position}`}${
            replay.error ? html` · ${replay.error}` : nothing
          }`}
    </p>`;
  }

  /** The event the live tail showed whose delivery the view looks for, as it is not listed yet. */
  #renderUnlisted(): TemplateResult | typeof nothing {
    const event = this.#unlisted();
    if (!event) return nothing;
    const filtered = this.#activeFirstPage()?.filter;
    return html`<p class="hint" role="status" data-testid="portal-deliveries-unlisted">
      Event #${event.seq} <code>${event.type}</code>, shown by the live tail, is not listed yet: a delivery is listed once
      its first attempt settles${filtered ? ', unless the filter passes the event over' : ''}. The view looks again every second meanwhile.
    </p>`;
  }

  #renderTestResult(subscription: Subscription): TemplateResult {
    const result = this.testResults[subscription.id];
    return html`<p class="test-result" role="status" data-testid="portal-test-result" data-status=${result?.status ?? ''}>${
      result
        ? html`Test event${result.event?.type ? html` <code>${result.event.type}</code>` : nothing}: <strong>${result.status}</strong>${httpStatus(result.responseStatus)} · ${result.durationMs} ms
            ${result.responseBody ? html`<pre>${result.responseBody}</pre>` : nothing}
            ${result.error ? html`<pre>${result.error}</pre>` : nothing}`
        : nothing
    }</p>`;
  }

  /** The form that creates a subscription; without a transport to offer (the server's list did not load, or it mounts none), why there is none. */
  #renderCreate(): TemplateResult {
    const offered = this.#offered();
    if (offered.length === 0 && this.loaded !== 'loading') {
      return html`<div class="card" data-testid="portal-create-unavailable">
        <h3>New subscription</h3>
        ${this.loaded === 'failed'
          ? html`<p>The portal could not load the transports the server offers, so no subscription can be made yet.</p>`
          : html`<p>The server offers no transport to subscribe with.</p>`}
      </div>`;
    }
    const chosen = offered.includes(this.createTransport) ? this.createTransport : (offered[0] ?? '');
    return html`<form class="card create" @submit=${this.#onSubmit((form) => this.#create(form))}>
      <h3>New subscription</h3>
      <label>Transport
        <select name="transport" data-testid="portal-create-transport" @change=${(event: Event) => {
          this.createTransport = (event.target as HTMLSelectElement).value;
        }}>${offered.map((name) => html`<option ?selected=${name === chosen}>${name}</option>`)}</select>
      </label>
      <label>Event types (comma-separated, patterns allowed)
        <input name="types" required data-testid="portal-create-types" placeholder="order.*" />
      </label>
      ${chosen === 'webhook'
        ? html`<label>Endpoint URL
            <input name="url" type="url" data-testid="portal-create-url" placeholder="https://example.com/hook" />
          </label>`
        : html`<div class="wide">
            <label>Config (JSON)
              <textarea name="config" rows="2" spellcheck="false" placeholder="{}" aria-describedby="config-help" data-testid="portal-create-config"></textarea>
            </label>
            <p class="hint" id="config-help">What the ${chosen ? `${chosen} ` : ''}transport takes, as its documentation says; empty for nothing.</p>
          </div>`}
      <div class="wide">${this.#filterField({ key: 'create', value: '', testId: 'portal-create-filter', label: html`Filter (JSON)`, help: true })}</div>
      <button type="submit" data-testid="portal-create-submit">Create</button>
    </form>`;
  }

  #renderSubscriptions(): TemplateResult {
    return html`<section data-testid="portal-subscriptions" aria-labelledby="subscriptions-title">
      <h2 id="subscriptions-title" tabindex="-1">Subscriptions</h2>
      ${this.#renderCreate()}
      ${this.#renderSecret()}
      ${this.loaded === 'failed' ? nothing : this.#renderSubscriptionsTable()}
    </section>`;
  }

  /** The signing secret shown once, and whose it is. */
  #renderSecret(): TemplateResult | typeof nothing {
    const shown = this.secret;
    if (!shown) return nothing;
    const until = shown.previousUntil ? new Date(shown.previousUntil) : undefined;
    return html`<div class="card secret" role="status" data-testid="portal-secret-card" data-id=${shown.subscription.id}>
      <p>${shown.previousUntil === undefined ? 'Signing secret' : 'New signing secret'} of ${named(shown.subscription)}, shown only now: keep it.</p>
      <code data-testid="portal-secret">${shown.value}</code>
      ${until ? html`<p class="hint">The secret it replaces goes on signing alongside it until ${until.toLocaleString()}.</p>` : nothing}
    </div>`;
  }

  /** The question asked before a delete or a rotation, in the row, with its confirm and cancel buttons; Escape cancels too. */
  #renderConfirm(confirming: Confirmation): TemplateResult {
    const { action, subscription } = confirming;
    const questionId = `confirm-${subscription.id}`;
    return html`<div class=${`confirm ${action}`} role="group" aria-labelledby=${questionId} data-testid="portal-confirm"
      @keydown=${(event: KeyboardEvent) => {
        if (event.key === 'Escape') void this.#cancelConfirm();
      }}>
      <p id=${questionId}>${
        action === 'delete'
          ? html`Delete subscription ${named(subscription)}? It stops deliveries; its events stay in the log.`
          : html`Rotate the signing secret of ${named(subscription)}? A new secret signs its deliveries from now on; the current one goes on signing alongside it for a grace period, while your endpoint switches over.`
      }</p>
      <div class="actions">
        <button type="button" class=${action === 'delete' ? 'confirm-yes danger' : 'confirm-yes'} data-testid="portal-confirm-yes" @click=${() => this.#confirmed(confirming)}>${
          action === 'delete' ? 'Yes, delete' : 'Yes, rotate'
        }</button>
        <button type="button" data-testid="portal-confirm-cancel" @click=${() => this.#cancelConfirm()}>Cancel</button>
      </div>
    </div>`;
  }

  /** The subscriptions, a row each, with their edit forms, actions, and the last test event's result. */
  #renderSubscriptionsTable(): TemplateResult {
    return html`<table>
      <caption class="visually-hidden">Your subscriptions</caption>
      <thead><tr><th scope="col">Subscription</th><th scope="col">Transport</th><th scope="col">Types and filter</th><th scope="col">Status</th><th scope="col">Actions</th></tr></thead>
      <tbody>
        ${this.subscriptions.map(
          (subscription) => html`<tr data-testid="subscription-row" data-id=${subscription.id}>
            <td data-label="Subscription"><code>${subscription.id}</code>${this.#renderTarget(subscription)}</td>
            <td data-label="Transport">${subscription.transport}</td>
            <td data-label="Types and filter">
              <form class="edit" @submit=${this.#onSubmit((form) => this.#edit(subscription, form))}>
                <label><span class="visually-hidden">Event types of ${subscription.id}</span>
                  <input name="types" required .value=${subscription.types.join(', ')} data-testid="subscription-types" />
                </label>
                ${this.#filterField({
                  key: subscription.id,
                  value: subscription.filter ? JSON.stringify(subscription.filter) : '',
                  testId: 'subscription-filter',
                  label: html`<span class="visually-hidden">Filter (JSON) of ${subscription.id}</span>`,
                  help: false,
                })}
                <button type="submit" class="secondary">Save changes</button>
              </form>
            </td>
            <td data-label="Status">${subscription.status}</td>
            <td data-label="Actions">
              <div class="actions">
                ${subscription.status === 'paused'
                  ? html`<button type="button" @click=${() => this.#run(() => this.#setStatus(subscription, 'active'))}>Resume</button>`
                  : html`<button type="button" @click=${() => this.#run(() => this.#setStatus(subscription, 'paused'))}>Pause</button>`}
                ${subscription.transport === 'webhook'
                  ? html`<button type="button" data-action="rotate" @click=${() => this.#confirm('rotate', subscription)}>Rotate secret</button>`
                  : nothing}
                ${this.#isPush(subscription)
                  ? html`<button type="button" data-testid="portal-test-send" @click=${() => this.#run(() => this.#sendTest(subscription))}>Send a test event</button>
                      <button type="button" @click=${() => this.#showDeliveriesOf(subscription.id)}>Deliveries</button>`
                  : nothing}
                <button type="button" class="danger" data-action="delete" @click=${() => this.#confirm('delete', subscription)}>Delete</button>
              </div>
              ${this.confirming?.subscription.id === subscription.id ? this.#renderConfirm(this.confirming) : nothing}
              ${this.#isPush(subscription) ? this.#renderTestResult(subscription) : nothing}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${this.subscriptions.length === 0 && this.loaded === 'yes' ? html`<p>No subscriptions yet.</p>` : nothing}`;
  }

  /** Where the events of `subscription` go, under its id: it never widens the column, however long. */
  #renderTarget(subscription: Subscription): TemplateResult | typeof nothing {
    const target = targetOf(subscription.config);
    return target ? html`<code class="target" data-testid="subscription-target">${breakable(target)}</code>` : nothing;
  }

  #renderDeliveries(): TemplateResult {
    return html`<section data-testid="portal-deliveries" aria-labelledby="deliveries-title">
      <h2 id="deliveries-title">Deliveries</h2>
      <div class="toolbar">
        <label>Subscription
          <select @change=${this.#onPick((value) => {
            this.selected = value;
          })}>
            ${this.subscriptions.filter((subscription) => this.#isPush(subscription)).map((subscription) => html`<option value=${subscription.id} ?selected=${subscription.id === this.selected}>${subscription.id} (${subscription.transport})</option>`)}
          </select>
        </label>
        <label>Status
          <select @change=${this.#onPick((value) => {
            this.statusFilter = value;
          })}>
            ${['', 'pending', 'delivered', 'failed'].map((status) => html`<option value=${status} ?selected=${status === this.statusFilter}>${status || 'any'}</option>`)}
          </select>
        </label>
        <button type="button" @click=${() => this.#load('deliveries')}>Refresh</button>
      </div>
      <div class="toolbar">
        <form class="toolbar" @submit=${this.#onSubmit((form) => this.#replay({ after: Number(new FormData(form).get('after')) }))}>
          <label>Replay every event after seq
            <input name="after" type="number" min="0" required value="0" data-testid="portal-replay-after" />
          </label>
          <button type="submit" data-testid="portal-replay-submit">Replay</button>
        </form>
        <form class="toolbar" @submit=${this.#onSubmit((form) => this.#replay({ since: instantOf(String(new FormData(form).get('since'))) }))}>
          <label>…or every event since (your time)
            <input name="since" type="datetime-local" step="1" required data-testid="portal-replay-since" />
          </label>
          <button type="submit" data-testid="portal-replay-since-submit">Replay since</button>
        </form>
      </div>
      ${this.#renderReplay()}
      ${this.#renderUnlisted()}
      <ul class="deliveries">
        ${this.deliveries.map(
          (delivery) => html`<li class="card" data-testid="delivery-row" data-status=${delivery.status}>
            <p><strong>Event #${delivery.eventSeq}</strong> · <span class="status">${delivery.status}</span> · ${attemptsSummary(delivery)}
              <button type="button" data-testid="delivery-retry" @click=${() => this.#run(() => this.#retry(delivery))}>Retry</button>
            </p>
            <ol>
              ${delivery.attempts.map(
                (attempt) => html`<li data-testid="delivery-attempt" data-status=${attempt.status}>
                  ${attempt.status}${httpStatus(attempt.responseStatus)} · ${attempt.durationMs} ms
                  ${attempt.responseBody ? html`<pre>${attempt.responseBody}</pre>` : nothing}
                  ${attempt.error ? html`<pre>${attempt.error}</pre>` : nothing}
                </li>`,
              )}
            </ol>
          </li>`,
        )}
      </ul>
      ${this.deliveries.length === 0 && !this.loadFailed ? html`<p>No deliveries yet.</p>` : nothing}
      ${this.next !== null ? html`<button type="button" @click=${() => this.#run(() => this.#loadDeliveries(this.next ?? undefined))}>Older</button>` : nothing}
    </section>`;
  }

  #renderHealth(): TemplateResult {
    return html`<section data-testid="portal-health" aria-labelledby="health-title">
      <h2 id="health-title">Health, last 24 hours</h2>
      ${this.health.length === 0 && !this.loadFailed ? html`<p>No push subscriptions.</p>` : nothing}
      ${this.health.map(({ subscription, health }) => {
        const summary =
          health.attempts === 0
            ? 'No delivery attempts in the last 24 hours.'
            : `${Math.round((health.succeeded / health.attempts) * 100)}% of ${health.attempts} attempts succeeded, median latency ${health.medianMs} ms`;
        const slowest = Math.max(1, ...health.hours.map((hour) => hour.medianMs ?? 0));
        // The chart's start, middle and end: 24 hours ago, 12 hours ago, now.
        const since = health.hours[0]?.start ?? 0;
        const now = since + 24 * 3_600_000;
        const ticks = [since, (since + now) / 2, now];
        return html`<article class="card" data-testid="health-endpoint" data-id=${subscription.id}>
          <h3><code>${subscription.id}</code> ${String(subscription.config.url ?? subscription.transport)}</h3>
          <p data-testid="health-summary">${summary}</p>
          <svg class="chart" viewBox="0 0 240 60" role="img" aria-label=${`Hour by hour from ${clockOf(since)} to ${clockOf(now)}: ${summary}`}>
            ${health.hours.map((hour, index) => {
              const height = hour.attempts === 0 ? 0 : (hour.succeeded / hour.attempts) * 50;
              return svg`<rect class="failed" x=${index * 10 + 1} y="5" width="8" height=${hour.attempts === 0 ? 0 : 50 - height}></rect>
                <rect class="succeeded" x=${index * 10 + 1} y=${55 - height} width="8" height=${height}></rect>`;
            })}
            <polyline class="latency" points=${health.hours
              .map((hour, index) => (hour.medianMs === null ? '' : `${index * 10 + 5},${55 - (hour.medianMs / slowest) * 50}`))
              .filter(Boolean)
              .join(' ')}></polyline>
            ${health.hours.map((hour, index) =>
              hour.medianMs === null ? nothing : svg`<circle class="latency-point" cx=${index * 10 + 5} cy=${55 - (hour.medianMs / slowest) * 50} r="2"></circle>`,
            )}
            ${[0.5, 120, 239.5].map((x) => svg`<line class="tick" x1=${x} x2=${x} y1="55" y2="60"></line>`)}
          </svg>
          <p class="axis" data-testid="health-axis">${ticks.map((at) => html`<time datetime=${new Date(at).toISOString()}>${clockOf(at)}</time>`)}</p>
          <p class="legend"><span class="swatch succeeded"></span> succeeded · <span class="swatch failed"></span> failed · line and dots: median latency${health.attempts === 0 ? '' : ` (top: ${slowest} ms)`}</p>
        </article>`;
      })}
    </section>`;
  }

  /** What the live tail says of its stream: a tail with no event yet tells whether it is connected and waiting for one. */
  #tailStatusText(): string {
    switch (this.tailStatus) {
      case 'connecting':
        return 'Connecting…';
      case 'open':
        return this.tail.length === 0 ? 'Connected: waiting for events.' : 'Connected.';
      case 'reconnecting':
        return this.tailSilentFor ? `Reconnecting… (the stream sent nothing for ${durationOf(this.tailSilentFor)})` : 'Reconnecting…';
      case 'closed':
        return 'Not connected.';
    }
  }

  #renderTail(): TemplateResult {
    return html`<section data-testid="portal-tail" aria-labelledby="tail-title">
      <h2 id="tail-title">Live tail</h2>
      <p>Events for you, as they are published.
        <span class="tail-status" role="status" data-testid="portal-tail-status">${this.#tailStatusText()}</span></p>
      ${this.tailProblem
        ? html`<div class="card tail-problem" role="alert" data-testid="portal-tail-problem">
            <p class="problem">${this.tailProblem}</p>
            <p>The live tail tries again by itself. <button type="button" @click=${() => this.#tailRetryNow?.()}>Try again</button></p>
          </div>`
        : nothing}
      <ol class="tail" aria-live="polite">
        ${this.tail.map((event) => html`<li><code>#${event.seq}</code> <strong>${event.type}</strong> <code>${event.data}</code></li>`)}
      </ol>
    </section>`;
  }

  static override styles = css`
    :host {
      --_accent: var(--herald-accent, #1d4ed8);
      --_bg: var(--herald-bg, #ffffff);
      --_fg: var(--herald-fg, #111827);
      --_muted: var(--herald-muted, #4b5563);
      --_border: var(--herald-border, #d1d5db);
      --_danger: var(--herald-danger, #b91c1c);
      --_radius: var(--herald-radius, 6px);
      display: block;
      background: var(--_bg);
      color: var(--_fg);
      font: 15px/1.5 var(--herald-font, system-ui, sans-serif);
      /*
       * A long word (a URL, an id, a server's reason) may break anywhere, so that it counts for nothing in how
       * narrow the element can be: inside a page's grid or flex layout, it never makes the page wider than the window.
       */
      overflow-wrap: anywhere;
    }
    /* The subscriptions table sizes its columns by their words, which stay whole there unless a line cannot hold them. */
    table { overflow-wrap: break-word; }
    .portal, .ended { max-width: 72rem; margin: 0 auto; padding: 1rem; }
    header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; justify-content: space-between; }
    h1 { font-size: 1.4rem; margin: 0; }
    nav { display: flex; flex-wrap: wrap; gap: 0.25rem; }
    button { font: inherit; border: 1px solid var(--_accent); background: var(--_bg); color: var(--_accent); border-radius: var(--_radius); padding: 0.3rem 0.7rem; cursor: pointer; }
    button[type='submit']:not(.secondary), button[aria-current='page'] { background: var(--_accent); color: #fff; }
    .edit { display: flex; flex-direction: column; gap: 0.25rem; align-items: stretch; min-width: 14rem; }
    .edit button { align-self: start; }
    .wide { grid-column: 1 / -1; }
    textarea { font: 0.85rem/1.4 ui-monospace, monospace; padding: 0.3rem; border: 1px solid var(--_muted); border-radius: var(--_radius); background: var(--_bg); color: var(--_fg); resize: vertical; width: 100%; box-sizing: border-box; }
    textarea[aria-invalid='true'] { border: 2px solid var(--_danger); }
    .hint { color: var(--_muted); font-size: 0.85rem; margin: 0.2rem 0 0; }
    .field-error { color: var(--_danger); font-weight: 600; margin: 0.2rem 0 0; }
    .test-result { margin: 0.4rem 0 0; }
    /* As wide as the column the line above and the buttons make, however long: a long answer leaves the other columns their room. */
    .test-result pre { contain: inline-size; }
    .test-result:empty { margin: 0; }
    .replay { margin: 0.75rem 0 0; }
    button.danger { border-color: var(--_danger); color: var(--_danger); }
    button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible { outline: 3px solid var(--_accent); outline-offset: 2px; }
    input, select { font: inherit; padding: 0.3rem; border: 1px solid var(--_muted); border-radius: var(--_radius); background: var(--_bg); color: var(--_fg); box-sizing: border-box; max-width: 100%; }
    label { display: flex; flex-direction: column; gap: 0.2rem; color: var(--_fg); min-width: 0; max-width: 100%; }
    .card { border: 1px solid var(--_border); border-radius: var(--_radius); padding: 0.75rem; margin: 0.75rem 0; }
    .create { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: 0.75rem; align-items: end; }
    .create h3 { grid-column: 1 / -1; margin: 0; }
    .toolbar { display: flex; flex-wrap: wrap; gap: 0.75rem; align-items: end; margin: 0.5rem 0; }
    /* A select as wide as its longest option (a subscription's id) may shrink: it never widens a narrow page, nor the page around the element. */
    .toolbar select { width: 100%; }
    table { width: 100%; border-collapse: collapse; }
    th, td { text-align: left; padding: 0.4rem; border-bottom: 1px solid var(--_border); vertical-align: top; }
    .actions { display: flex; flex-wrap: wrap; gap: 0.25rem; }
    /* An endpoint's answer or error wraps, however long its lines and words: it never widens the page, nor the subscriptions table. */
    pre { background: color-mix(in srgb, var(--_fg) 6%, var(--_bg)); padding: 0.5rem; overflow: auto; border-radius: var(--_radius); max-height: 16rem; white-space: pre-wrap; overflow-wrap: anywhere; }
    code, .field-error { overflow-wrap: anywhere; }
    .deliveries { list-style: none; padding: 0; }
    .error { color: var(--_danger); font-weight: 600; }
    .trying { color: var(--_muted); font-weight: 600; margin: 0; }
    .failure { display: flex; flex-wrap: wrap; gap: 0 0.75rem; align-items: center; }
    .secret code { font-size: 1.05rem; }
    .secret p code { font-size: inherit; }
    .secret p:first-child { margin-top: 0; }
    /* As wide as its column is made by the rest of the row, however long: a URL never widens the page, nor takes the other columns' room. */
    .target, .confirm { display: block; contain: inline-size; }
    .target { color: var(--_muted); font-size: 0.85rem; margin-top: 0.2rem; }
    .confirm { border-left: 3px solid var(--_accent); padding: 0.1rem 0 0.1rem 0.6rem; margin-top: 0.5rem; }
    .confirm.delete { border-left-color: var(--_danger); }
    .confirm p { margin: 0 0 0.4rem; }
    button.confirm-yes { background: var(--_accent); color: #fff; }
    button.confirm-yes.danger { background: var(--_danger); border-color: var(--_danger); }
    h2[tabindex='-1']:focus { outline: none; }
    .tail-problem .problem { color: var(--_danger); font-weight: 600; margin-top: 0; }
    .tail-problem p:last-child { margin-bottom: 0; }
    .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
    .chart { width: 100%; max-width: 36rem; height: auto; border-bottom: 1px solid var(--_border); }
    .chart .succeeded, .swatch.succeeded { fill: var(--_accent); background: var(--_accent); }
    .chart .failed, .swatch.failed { fill: var(--_danger); background: var(--_danger); }
    .chart .latency { fill: none; stroke: var(--_fg); stroke-width: 1.5; }
    .chart .latency-point { fill: var(--_fg); }
    .chart .tick { stroke: var(--_muted); stroke-width: 1; vector-effect: non-scaling-stroke; }
    /* Under the chart, as wide: the first time at its left edge, the middle one centred, the last at its right edge. */
    .axis { display: grid; grid-template-columns: 1fr auto 1fr; gap: 0.5rem; max-width: 36rem; margin: 0.2rem 0 0; color: var(--_muted); font-size: 0.8rem; white-space: nowrap; }
    .axis time:last-child { justify-self: end; }
    .swatch { display: inline-block; width: 0.8rem; height: 0.8rem; vertical-align: middle; }
    .legend { color: var(--_muted); font-size: 0.85rem; }
    .tail-status { color: var(--_muted); font-weight: 600; }
    .tail { font-family: ui-monospace, monospace; font-size: 0.85rem; }
    @media (max-width: 40rem) {
      thead { display: none; }
      tr, td { display: block; }
      td::before { content: attr(data-label) ': '; font-weight: 600; }
      tr { border-bottom: 2px solid var(--_border); padding: 0.5rem 0; }
    }
  `;
}

if (!customElements.get('herald-portal')) customElements.define('herald-portal', HeraldPortal);

declare global {
  interface HTMLElementTagNameMap {
    'herald-portal': HeraldPortal;
  }
}
