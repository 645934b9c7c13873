import { type Context, context, type Span, SpanKind, trace } from '@opentelemetry/api';
import type { Transaction } from 'kysely';
import { z } from 'zod';
import type { Broker, Unsubscribe } from './broker.js';
import type { HeraldEvent, NewEvent, PublishInput, PublishResult } from './envelope.js';
import { toIssues, UnknownEventTypeError, ValidationError } from './errors.js';
import type { EventCatalog } from './event-type-catalog.js';
import { newId } from './ids.js';
import { type Logger, silentLogger } from './logger.js';
import { consumerId } from './names.js';
import { RepeatedFailure } from './repeated-failure.js';
import type { Store } from './store.js';
import { endSpan, inSpan, messagingAttributes, startSpan, type TraceFields, traceFields } from './tracing.js';

const channel = 'herald:events';

/** The first wait, in ms, before reading a log that held back a rung event again; it doubles up to the poll interval. */
const firstHeldBackWait = 5;

/** The envelope fields a producer sets; `type` and `data` are checked against the catalog. */
export const publishInputSchema = z.strictObject({
  type: z.string().min(1),
  data: z.unknown(),
  id: z
    .string()
    .regex(/^[\x21-\x7e]{1,256}$/, 'must be 1 to 256 visible ASCII characters')
    .optional(),
  subject: z
    .string()
    .min(1)
    .max(1024)
    // Bytes, not characters: PostgreSQL's index on (type, subject) takes rows of at most 2,704 bytes.
    .refine((text) => Buffer.byteLength(text) <= 1024, 'must be at most 1024 bytes in UTF-8')
    .regex(/^[^\p{Cc}\p{Cs}]*$/u, 'must hold no control characters (U+0000 to U+001F, U+007F to U+009F) and no unpaired surrogates, as CloudEvents asks of every string')
    .optional(),
  consumer: consumerId.optional(),
});

/** How a publish is made. */
export interface PublishOptions {
  /** The OpenTelemetry context whose span is the publish span's parent. @default the active context */
  parent?: Context;
}

/** Publishing in a transaction of the app's own (see `Store.appendIn`). */
export interface InTransaction<DB = unknown> extends PublishOptions {
  /**
   * A kysely transaction open on the same database as Herald's store (the same SQLite file, through
   * `SqlStore.database`, or the same PostgreSQL database). The event is written in it: it enters the log
   * when the transaction commits, and never when it rolls back.
   */
  transaction: Transaction<DB>;
}

/** A publish in the app's transaction: its result, and a way to deliver at once once the transaction has committed. */
export interface PublishedInTransaction<TData = unknown> extends PublishResult<TData> {
  /**
   * Call after the transaction has committed: delivery starts at once, on every node. Without it, the
   * event is delivered after the next poll of the log (`pollInterval`, 1 s by default). Harmless after a rollback.
   */
  afterCommit(): void;
}

/** Receives events in `seq` order, every event once, as they enter the log. */
export type EventListener = (events: readonly HeraldEvent[]) => void;

export interface EventBusOptions {
  store: Store;
  broker: Broker;
  catalog: EventCatalog;
  /** The envelope's `source`. @default '/herald' */
  source?: string;
  /** How often to look for events whose ring was lost, in ms. @default 1000 */
  pollInterval?: number;
  /** Events read from the log per catch-up query. @default 500 */
  batchSize?: number;
  logger?: Logger;
}

/**
 * publish → validate against the catalog → `Store.append` → ring every node through the broker →
 * listeners (the transports). The log is the source of truth: a ring only says "read the log",
 * so a node that missed one catches up from the Store.
 */
export class EventBus {
  readonly #store: Store;
  readonly #broker: Broker;
  readonly #catalog: EventCatalog;
  readonly #source: string;
  readonly #pollInterval: number;
  readonly #batchSize: number;
  readonly #logger: Logger;
  readonly #pollFailure: RepeatedFailure;
  readonly #listeners = new Set<EventListener>();
  /** Events this node appended and has not yet handed to listeners, by seq. */
  readonly #appended = new Map<number, HeraldEvent>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #latest = 0;
  #known = 0;
  #pumping?: Promise<void>;
  /** Rings of this node's appends on their way to the broker. */
  readonly #rings = new Set<Promise<void>>();
  /** The newest seq to ring the other nodes with, and whether that ring is scheduled. */
  #ringTo = 0;
  #ringPending = false;
  /** A newer seq became known while pumping. */
  #knownAgain = false;
  #timer?: NodeJS.Timeout;
  /** Reads the log again while it holds back events that were rung (see `#readAgainSoon`). */
  #heldBackTimer?: NodeJS.Timeout;
  #heldBackWait = firstHeldBackWait;
  #unsubscribe?: Unsubscribe;
  #stopReconnect?: () => void;
  #stopped = false;

  constructor(options: EventBusOptions) {
    this.#store = options.store;
    this.#broker = options.broker;
    this.#catalog = options.catalog;
    this.#source = options.source ?? '/herald';
    this.#pollInterval = options.pollInterval ?? 1000;
    this.#batchSize = options.batchSize ?? 500;
    this.#logger = options.logger ?? silentLogger;
    this.#pollFailure = new RepeatedFailure(this.#logger, 'warn', 'polling the log failed');
  }

  /** The `source` of the envelopes it makes (the server's `source` option). */
  get source(): string {
    return this.#source;
  }

  /** The last `seq` handed to listeners. */
  get latest(): number {
    return this.#latest;
  }

  /** Starts listening from the current end of the log. */
  async start(): Promise<void> {
    this.#latest = this.#known = (await this.#store.bounds()).latest;
    this.#unsubscribe = await this.#broker.subscribe(channel, (message) => this.#readUpTo(Number(message)));
    this.#stopReconnect = this.#broker.onReconnect?.(() => void this.#poll());
    this.#timer = setInterval(() => void this.#poll(), this.#pollInterval);
    this.#timer.unref();
  }

  /** Waits for in-flight publishes, their rings and deliveries to listeners, then stops listening. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    clearTimeout(this.#heldBackTimer);
    this.#stopReconnect?.();
    await Promise.allSettled(this.#inFlight);
    await Promise.allSettled(this.#rings);
    await this.#unsubscribe?.();
    // A pump may hand over to another one (a newer seq became known while it ran): wait for the last.
    while (this.#pumping) await this.#pumping;
  }

  /** Calls `listener` with every event that enters the log from now on. */
  onEvents(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Validates, stores durably and announces one event. Resolves once it is in the log. With a
   * `transaction`, the event is validated first (an invalid one throws before anything is written), then
   * written in that transaction, and delivered once it has committed. The publish is traced in a span whose
   * parent is in `parent` (the active OpenTelemetry context, by default), and the event carries that span's
   * trace context (`traceparent`, `tracestate`).
   */
  publish(input: PublishInput, options?: PublishOptions): Promise<PublishResult>;
  publish<DB>(input: PublishInput, options: InTransaction<DB>): Promise<PublishedInTransaction>;
  async publish<DB>(input: PublishInput, options?: PublishOptions | InTransaction<DB>): Promise<PublishResult | PublishedInTransaction> {
    const [result] = await this.publishMany([input], options as InTransaction<DB>);
    return result as PublishResult;
  }

  /** Like {@link publish} for several events; nothing is stored unless all of them are valid. */
  publishMany(inputs: readonly PublishInput[], options?: PublishOptions): Promise<PublishResult[]>;
  publishMany<DB>(inputs: readonly PublishInput[], options: InTransaction<DB>): Promise<PublishedInTransaction[]>;
  async publishMany<DB>(inputs: readonly PublishInput[], options: PublishOptions | InTransaction<DB> = {}): Promise<PublishResult[] | PublishedInTransaction[]> {
    if (this.#stopped) throw new Error('The event bus is stopped');
    const parent = options.parent ?? context.active();
    const types = new Set(inputs.map((input) => input.type));
    const destination = types.size === 1 ? String(inputs[0]?.type) : undefined;
    const span = startSpan(destination === undefined ? 'publish' : `publish ${destination}`, SpanKind.PRODUCER, parent, () => ({
      ...messagingAttributes('publish', destination),
      'messaging.batch.message_count': inputs.length,
    }));
    const inside = trace.setSpan(parent, span);
    if ('transaction' in options) {
      const { transaction } = options;
      // The catalog is not reloaded for a type it lacks: on SQLite, Herald's one connection is the app's transaction's until it ends.
      return this.#publish(inputs, span, inside, (events) => this.#appendIn(transaction, events), false);
    }
    const work = this.#publish(inputs, span, inside, (events) => this.#append(events), true);
    this.#inFlight.add(work);
    try {
      return await work;
    } finally {
      this.#inFlight.delete(work);
    }
  }

  /**
   * Validates (synchronously: the publish is in flight from the call on) and appends, traced under `span` (in `inside`).
   * With `reload`, a type the catalog lacks (registered on another node, maybe) makes it read the stored types once
   * (`loadMissing`), and the events are validated again.
   */
  async #publish<R extends PublishResult>(
    inputs: readonly PublishInput[],
    span: Span,
    inside: Context,
    append: (events: NewEvent[]) => Promise<R[]>,
    reload: boolean,
  ): Promise<R[]> {
    try {
      const traced = traceFields(span);
      const validate = () => inSpan('validate', inside, () => inputs.map((input) => this.#envelope(input, traced)));
      let events: NewEvent[];
      try {
        events = validate();
      } catch (error) {
        if (!reload || !(error instanceof UnknownEventTypeError)) throw error;
        await this.#catalog.loadMissing(inputs.flatMap(({ type }) => (typeof type === 'string' ? [type] : [])));
        events = validate();
      }
      const results = await inSpan('append', inside, () => append(events));
      if (results.length === 1) span.setAttribute('messaging.message.id', (results[0] as PublishResult).event.id);
      endSpan(span);
      return results;
    } catch (error) {
      endSpan(span, error);
      throw error;
    }
  }

  #envelope(input: PublishInput, traced: TraceFields): NewEvent {
    const parsed = publishInputSchema.safeParse(input);
    if (!parsed.success) throw new ValidationError('The event is not valid', toIssues(parsed.error.issues));
    const { type, id, subject, consumer } = parsed.data;
    const data = this.#catalog.validate(type, input.data);
    return {
      specversion: '1.0',
      id: id ?? newId('evt'),
      type,
      source: this.#source,
      ...(subject !== undefined ? { subject } : {}),
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data,
      ...(consumer !== undefined ? { consumer } : {}),
      ...traced,
    };
  }

  async #append(events: NewEvent[]): Promise<PublishResult[]> {
    const results = await this.#store.append(events);
    let newest = 0;
    for (const { event, created } of results) {
      if (!created) continue;
      if (event.seq > this.#latest) this.#appended.set(event.seq, event);
      newest = Math.max(newest, event.seq);
    }
    if (newest > 0) {
      this.#readUpTo(newest);
      this.#ringOthers(newest);
    }
    return results;
  }

  async #appendIn<DB>(transaction: Transaction<DB>, events: NewEvent[]): Promise<PublishedInTransaction[]> {
    if (!this.#store.appendIn) throw new Error('This store cannot append in a transaction of yours: use the SQL store (SQLite or PostgreSQL)');
    const results = await this.#store.appendIn(transaction, events);
    // Not handed to listeners from here: the transaction may yet roll back. The log says what committed.
    const afterCommit = () => void this.#poll(true);
    return results.map((result) => ({ ...result, afterCommit }));
  }

  /**
   * Rings the other nodes with the newest seq, once for all the publishes a commit resolves at once (a
   * ring means "read up to at least here"). A publish does not wait for it: a hanging broker would hold it.
   */
  #ringOthers(seq: number): void {
    this.#ringTo = Math.max(this.#ringTo, seq);
    if (this.#ringPending) return;
    this.#ringPending = true;
    const rung = Promise.resolve()
      .then(() => {
        this.#ringPending = false;
        return this.#broker.publish(channel, String(this.#ringTo));
      })
      .catch((error: unknown) => {
        this.#logger.warn({ err: error }, 'ringing the broker failed; other nodes catch up by polling');
      });
    this.#rings.add(rung);
    void rung.finally(() => this.#rings.delete(rung));
  }

  /** The log holds events up to `seq` (this node appended them, a ring or a poll says so): hands them to the listeners. */
  #readUpTo(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq <= this.#latest) return;
    this.#known = Math.max(this.#known, seq);
    if (this.#pumping) {
      this.#knownAgain = true;
      return;
    }
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = undefined;
      // Also after stop(): the events of in-flight publishes must still reach the listeners.
      if (this.#knownAgain) {
        this.#knownAgain = false;
        this.#readUpTo(this.#known);
      }
    });
  }

  /** Reads where the log ends, and hands listeners what is new; `ringOthers`: the other nodes too. */
  async #poll(ringOthers = false): Promise<void> {
    try {
      const { latest } = await this.#store.bounds();
      this.#pollFailure.succeeded();
      this.#readUpTo(latest);
      if (ringOthers && latest > 0 && !this.#stopped) this.#ringOthers(latest);
    } catch (error) {
      this.#pollFailure.failed(error);
    }
  }

  /**
   * The log holds back a rung `seq` while a transaction that drew an older one is in flight (PostgreSQL,
   * see `SqlFlavor.decidedRow`): read again soon, then less and less often, up to the poll interval.
   */
  #readAgainSoon(): void {
    if (this.#heldBackTimer || this.#stopped) return;
    this.#heldBackTimer = setTimeout(() => {
      this.#heldBackTimer = undefined;
      this.#readUpTo(this.#known);
    }, this.#heldBackWait);
    this.#heldBackTimer.unref();
    this.#heldBackWait = Math.min(this.#heldBackWait * 2, this.#pollInterval);
  }

  /** Hands listeners every event up to `#known`, from this node's own appends where it can, else from the log. */
  async #pump(): Promise<void> {
    while (this.#latest < this.#known) {
      const batch: HeraldEvent[] = [];
      for (let next = this.#appended.get(this.#latest + 1); next; next = this.#appended.get(next.seq + 1)) {
        batch.push(next);
      }
      if (batch.length === 0) {
        try {
          batch.push(...(await this.#store.read({ after: this.#latest, limit: this.#batchSize })));
        } catch (error) {
          this.#logger.warn({ err: error }, 'reading the log failed; retrying on the next ring or poll');
          return;
        }
        if (batch.length === 0) {
          this.#readAgainSoon();
          return;
        }
        this.#heldBackWait = firstHeldBackWait;
      }
      for (const event of batch) this.#appended.delete(event.seq);
      this.#latest = (batch.at(-1) as HeraldEvent).seq;
      for (const listener of this.#listeners) {
        try {
          listener(batch);
        } catch (error) {
          this.#logger.error({ err: error }, 'an event listener threw');
        }
      }
    }
  }
}
