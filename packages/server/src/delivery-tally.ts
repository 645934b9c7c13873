import { Histogram, type HistogramConfiguration } from 'prom-client';

/**
 * One transport's deliveries in plain numbers: WebSocket and SSE report once per event per connection, and
 * a prom-client update (label hashing, validation) costs several times the counting. Read when scraped.
 */
export class DeliveryTally {
  /** Deliveries by outcome. */
  readonly outcomes = new Map<string, number>();
  /** Latencies per bucket of `bounds` (not cumulative), the last one past every bound. */
  readonly buckets: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.buckets = new Array<number>(bounds.length + 1).fill(0);
  }

  /** One delivery ended with `outcome`, `seconds` after its event was published (left out of the latency when not a time). */
  add(outcome: string, seconds: number): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
    this.#observe(seconds);
  }

  /**
   * The deliveries of a batch to one connection, all ended with `outcome` at `atMs`, of events published at
   * `publishedAt`. The connections that get the same batch share the array: its latencies are tallied once
   * per millisecond of `atMs`, and added as they are to each connection's count.
   */
  addAll(outcome: string, publishedAt: readonly number[], atMs: number): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + publishedAt.length);
    let shared = this.#batches.get(publishedAt);
    if (shared?.atMs !== atMs) {
      shared = Object.assign(new DeliveryTally(this.bounds), { atMs });
      for (const at of publishedAt) shared.#observe((atMs - at) / 1000);
      this.#batches.set(publishedAt, shared);
    }
    for (let bucket = 0; bucket < this.buckets.length; bucket++) this.buckets[bucket] = (this.buckets[bucket] as number) + (shared.buckets[bucket] as number);
    this.sum += shared.sum;
    this.count += shared.count;
  }

  /** The tally of each batch for the moment it was last delivered. */
  readonly #batches = new WeakMap<readonly number[], DeliveryTally & { atMs: number }>();

  #observe(seconds: number): void {
    if (!(Number.isFinite(seconds) && seconds >= 0)) return;
    let bucket = 0;
    while (bucket < this.bounds.length && seconds > (this.bounds[bucket] as number)) bucket++;
    this.buckets[bucket] = (this.buckets[bucket] as number) + 1;
    this.sum += seconds;
    this.count++;
  }
}

/**
 * A histogram by `transport` whose values are the tallies' at each scrape, in prom-client's own format
 * (`_bucket` with `le`, `_sum`, `_count`).
 */
export class TalliedHistogram extends Histogram<'transport'> {
  readonly #configuration: { name: string; help: string; buckets: readonly number[] };
  readonly #tallies: ReadonlyMap<string, DeliveryTally>;

  constructor(configuration: Omit<HistogramConfiguration<'transport'>, 'labelNames'> & { buckets: number[] }, tallies: ReadonlyMap<string, DeliveryTally>) {
    super({ ...configuration, labelNames: ['transport'] });
    this.#configuration = configuration;
    this.#tallies = tallies;
  }

  override async get(): ReturnType<Histogram<'transport'>['get']> {
    const { name, help, buckets } = this.#configuration;
    // prom-client's own histogram values carry `le` besides the declared labels.
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const [transport, tally] of this.#tallies) {
      let cumulative = 0;
      buckets.forEach((le, at) => {
        cumulative += tally.buckets[at] as number;
        values.push({ labels: { le, transport }, value: cumulative, metricName: `${name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', transport }, value: tally.count, metricName: `${name}_bucket` });
      values.push({ labels: { transport }, value: tally.sum, metricName: `${name}_sum` });
      values.push({ labels: { transport }, value: tally.count, metricName: `${name}_count` });
    }
    return { name, help, type: 'histogram', aggregator: 'sum', values } as unknown as Awaited<ReturnType<Histogram<'transport'>['get']>>;
  }

  /** What the registry reads for the text format, before `get`. */
  getForPromString(): ReturnType<Histogram<'transport'>['get']> {
    return this.get();
  }
}
