import type { HeraldEvent, PrunableLog, TransportKind, TransportMetrics } from '@herald/core';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { DeliveryTally, TalliedHistogram } from './delivery-tally.js';
import { type LimitEvents, limitNames } from './rate-limiter.js';

/** Seconds from publication to delivery: webhooks that wait out retries land in the last buckets. */
const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600];

let processRegistry: Registry | undefined;

/** The process metrics (CPU, memory, event loop), collected once per process however many Heralds it runs. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * What `/metrics` shows, in the Prometheus text format: events published, deliveries by transport
 * and outcome, delivery latency, connected clients and transport backlogs, plus the process metrics.
 */
export class HeraldMetrics {
  readonly #registry = new Registry();
  readonly #published: Counter<'type'>;
  /** The counter of each event type (the catalog's, so few): label lookups cost more than the counting. */
  readonly #publishedByType = new Map<string, { inc(): void }>();
  /** Each transport's deliveries, counted in plain numbers and read into the two metrics below when scraped. */
  readonly #tallies = new Map<string, DeliveryTally>();
  readonly #connections: Gauge<'transport'>;
  /** The backlog readers, with the labels of their series. */
  readonly #backlogs = new Map<string, { labels: { transport: string; scope: string }; read: () => number | Promise<number> }>();
  readonly #cursorResets: Counter<'transport'>;
  readonly #rateLimited: Counter<'limit'>;
  readonly #authenticationFailures: Counter;

  constructor(latestSeq: () => number, cachedCredentials: () => number) {
    const registers = [this.#registry];
    this.#published = new Counter({
      name: 'herald_events_published_total',
      help: 'Events that entered the log, by type (as this node saw them)',
      labelNames: ['type'],
      registers,
    });
    new Gauge({
      name: 'herald_log_latest_seq',
      help: 'The newest seq this node has handed to its transports',
      registers,
      collect() {
        this.set(latestSeq());
      },
    });
    new Gauge({
      name: 'herald_key_cache_entries',
      help: 'API keys and stream tokens this node holds in its authentication cache (those used in the last seconds)',
      registers,
      collect() {
        this.set(cachedCredentials());
      },
    });
    const tallies = this.#tallies;
    new Counter({
      name: 'herald_deliveries_total',
      help: 'Deliveries by transport and outcome, as the transports report them',
      labelNames: ['transport', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const [transport, tally] of tallies) for (const [outcome, count] of tally.outcomes) this.inc({ transport, outcome }, count);
      },
    });
    new TalliedHistogram(
      { name: 'herald_delivery_latency_seconds', help: "Time from an event's publication to its delivery, by transport", buckets: latencyBuckets, registers },
      tallies,
    );
    this.#connections = new Gauge({
      name: 'herald_connected_clients',
      help: 'Open client connections by transport: upgraded sockets, streaming responses and long polls',
      labelNames: ['transport'],
      registers,
    });
    this.#cursorResets = new Counter({
      name: 'herald_cursor_resets_total',
      help: "Durable subscriptions that attached with a cursor older than the log keeps (retention pruned past it), and were reset",
      labelNames: ['transport'],
      registers,
    });
    this.#rateLimited = new Counter({
      name: 'herald_rate_limited_total',
      help: 'Requests and WebSocket credentials refused (429) by a rate limit: the key\'s, the admin key\'s, or the address\'s failed authentications',
      labelNames: ['limit'],
      registers,
    });
    // Each limit's series from the start, at 0: an alert on its rate needs one before the first refusal.
    for (const limit of limitNames) this.#rateLimited.inc({ limit }, 0);
    this.#authenticationFailures = new Counter({
      name: 'herald_authentication_failures_total',
      help: 'Credentials refused (401): missing, malformed, unknown, revoked or expired, on the REST API and on WebSocket upgrades and auth messages',
      registers,
    });
    const backlogs = this.#backlogs;
    new Gauge({
      name: 'herald_transport_backlog',
      help: 'Work waiting in a transport, e.g. webhook deliveries not yet made; scope="node" adds up across nodes, scope="shared" is the same on each',
      labelNames: ['transport', 'scope'],
      registers,
      async collect() {
        for (const { labels, read } of backlogs.values()) {
          try {
            this.set(labels, await read());
          } catch {
            // A backlog that cannot be read now is left out of this scrape rather than failing it.
          }
        }
      },
    });
  }

  /** What the rate limits count: a request refused by the limit named `limit` (`key`, `admin`, `auth-failures`), a credential refused. */
  readonly limits: LimitEvents = {
    limited: (limit) => this.#rateLimited.inc({ limit }),
    authenticationFailed: () => this.#authenticationFailures.inc(),
  };

  /** The log's size and pruning, read each time metrics are scraped. */
  log(log: PrunableLog & { bounds(): Promise<{ oldest: number | null }> }, pruner: { readonly pruned: number }): void {
    const registers = [this.#registry];
    let size: Promise<{ events: number; bytes: number; oldest: number }> | undefined;
    // One read of the log for the three gauges of a scrape.
    const read = () =>
      (size ??= Promise.all([log.logSize(), log.bounds()])
        .then(([{ events, bytes }, { oldest }]) => ({ events, bytes, oldest: oldest ?? 0 }))
        .finally(() => setTimeout(() => (size = undefined), 1000).unref()));
    const gauge = (name: string, help: string, pick: (read: { events: number; bytes: number; oldest: number }) => number) =>
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          try {
            this.set(pick(await read()));
          } catch {
            // Left out of this scrape rather than failing it.
          }
        },
      });
    gauge('herald_log_oldest_seq', 'The oldest seq the log holds in full (older events were pruned, but those their type keeps)', (r) => r.oldest);
    gauge('herald_log_events', 'Events in the log', (r) => r.events);
    gauge('herald_log_bytes', 'Bytes the log takes (SQLite: the pages of the database file in use)', (r) => r.bytes);
    new Counter({
      name: 'herald_log_pruned_events_total',
      help: 'Events this node pruned from the log (retention, maximum count, compaction)',
      registers,
      collect() {
        this.reset();
        this.inc(pruner.pruned);
      },
    });
  }

  /** Counts events entering the log; give it to `bus.onEvents`. */
  readonly published = (events: readonly HeraldEvent[]): void => {
    for (const event of events) {
      let counter = this.#publishedByType.get(event.type);
      if (!counter) this.#publishedByType.set(event.type, (counter = this.#published.labels({ type: event.type })));
      counter.inc();
    }
  };

  /** A client connection of `transport` opened (+1) or closed (-1). */
  readonly connection = (transport: string, delta: 1 | -1): void => {
    this.#connections.inc({ transport }, delta);
  };

  /** The metrics one transport reports, labelled with its name; a push transport, which clients do not connect to, has no connections series. */
  forTransport(transport: string, kind: TransportKind): TransportMetrics {
    if (kind !== 'push') this.#connections.set({ transport }, 0);
    let tally = this.#tallies.get(transport);
    if (!tally) this.#tallies.set(transport, (tally = new DeliveryTally(latencyBuckets)));
    return {
      delivered: (outcome, latencyMs) => tally.add(outcome, latencyMs / 1000),
      deliveredAll: (outcome, publishedAt, atMs) => tally.addAll(outcome, publishedAt, atMs),
      backlog: (read, scope = 'node') => {
        this.#backlogs.set(`${transport} ${scope}`, { labels: { transport, scope }, read });
      },
      cursorReset: () => {
        this.#cursorResets.inc({ transport });
      },
    };
  }

  /** The content type of {@link text}. */
  get contentType(): string {
    return this.#registry.contentType;
  }

  /** Every metric in the Prometheus text format. */
  text(): Promise<string> {
    return Registry.merge([processMetrics(), this.#registry]).metrics();
  }
}
