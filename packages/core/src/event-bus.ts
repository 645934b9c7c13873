import { type Context, context, type Span, SpanKind, trace } from '@opentelemetry/api';
import { z } from 'zod';
import type { Broker, Unsubscribe } from './broker.js';
import type { HeraldEvent, NewEvent, PublishInput, PublishResult } from './envelope.js';
import { toIssues, ValidationError } from './errors.js';
import type { EventCatalog } from './event-type-catalog.js';
import { newId } from './ids.js';
import { type Logger, silentLogger } from './logger.js';
import { consumerId } from './names.js';
import type { Store } from './store.js';
import { endSpan, inSpan, messagingAttributes, startSpan, type TraceFields, traceFields } from './tracing.js';

const channel = 'herald:events';

/** The envelope fields a producer sets; `type` and `data` are checked against the catalog. */
export const publishInputSchema = z.strictObject({
  type: z.string().min(1),
  data: z.unknown(),
  id: z
    .string()
    .regex(/^[\x21-\x7e]{1,256}$/, 'must be 1 to 256 visible ASCII characters')
    .optional(),
  subject: z.string().min(1).max(1024).optional(),
  consumer: consumerId.optional(),
});

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
  /** A ring arrived while pumping. */
  #rungAgain = false;
  #timer?: NodeJS.Timeout;
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
  }

  /** The last `seq` handed to listeners. */
  get latest(): number {
    return this.#latest;
  }

  /** Starts listening from the current end of the log. */
  async start(): Promise<void> {
    this.#latest = this.#known = (await this.#store.bounds()).latest;
    this.#unsubscribe = await this.#broker.subscribe(channel, (message) => this.#ring(Number(message)));
    this.#stopReconnect = this.#broker.onReconnect?.(() => void this.#poll());
    this.#timer = setInterval(() => void this.#poll(), this.#pollInterval);
    this.#timer.unref();
  }

  /** Waits for in-flight publishes, their rings and deliveries to listeners, then stops listening. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#stopReconnect?.();
    await Promise.allSettled(this.#inFlight);
    await Promise.allSettled(this.#rings);
    await this.#unsubscribe?.();
    // A pump may hand over to another one (a ring arrived while it ran): wait for the last.
    while (this.#pumping) await this.#pumping;
  }

  /** Calls `listener` with every event that enters the log from now on. */
  onEvents(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Validates, stores durably and announces one event. Resolves once it is in the log. The publish is
   * traced in a span whose parent is in `parent` (the active OpenTelemetry context, by default), and the
   * event carries that span's trace context (`traceparent`, `tracestate`).
   */
  async publish(input: PublishInput, parent?: Context): Promise<PublishResult> {
    const [result] = await this.publishMany([input], parent);
    return result as PublishResult;
  }

  /** Like {@link publish} for several events; nothing is stored unless all of them are valid. */
  async publishMany(inputs: readonly PublishInput[], parent: Context = context.active()): Promise<PublishResult[]> {
    if (this.#stopped) throw new Error('The event bus is stopped');
    const types = new Set(inputs.map((input) => input.type));
    const destination = types.size === 1 ? String(inputs[0]?.type) : undefined;
    const span = startSpan(destination === undefined ? 'publish' : `publish ${destination}`, SpanKind.PRODUCER, parent, () => ({
      ...messagingAttributes('publish', destination),
      'messaging.batch.message_count': inputs.length,
    }));
    const work = this.#publish(inputs, span, trace.setSpan(parent, span));
    this.#inFlight.add(work);
    try {
      return await work;
    } finally {
      this.#inFlight.delete(work);
    }
  }

  /** Validates (synchronously: the publish is in flight from the call on) and appends, traced under `span` (in `inside`). */
  async #publish(inputs: readonly PublishInput[], span: Span, inside: Context): Promise<PublishResult[]> {
    try {
      const traced = traceFields(span);
      const events = inSpan('validate', inside, () => inputs.map((input) => this.#envelope(input, traced)));
      const results = await inSpan('append', inside, () => this.#append(events));
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
      this.#ring(newest);
      this.#ringOthers(newest);
    }
    return results;
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

  #ring(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq <= this.#latest) return;
    this.#known = Math.max(this.#known, seq);
    if (this.#pumping) {
      this.#rungAgain = true;
      return;
    }
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = undefined;
      // Also after stop(): the rings of in-flight publishes must still reach the listeners.
      if (this.#rungAgain) {
        this.#rungAgain = false;
        this.#ring(this.#known);
      }
    });
  }

  async #poll(): Promise<void> {
    try {
      this.#ring((await this.#store.bounds()).latest);
    } catch (error) {
      this.#logger.warn({ err: error }, 'polling the log failed');
    }
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
          this.#logger.warn({ err: error }, 'reading the log failed; retrying on the next ring');
          return;
        }
        if (batch.length === 0) return;
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
