import { z } from 'zod';
import { ConflictError, toIssues, UnknownEventTypeError, ValidationError } from './errors.js';
import { checkTypeRetention, parseRetention, type RetentionRules, type TypeRetention } from './log-retention.js';
import { eventTypeName } from './names.js';
import { patternMatches } from './pattern-cache.js';
import { exampleOf } from './example-of.js';

/** An event type: its name, the schema its `data` must satisfy, and a description. */
export interface EventTypeDefinition<TName extends string = string, TSchema extends z.ZodType = z.ZodType> {
  readonly name: TName;
  readonly schema: TSchema;
  readonly description?: string;
  /** How long its events are kept, instead of the log's retention (see {@link TypeRetention}). */
  readonly retention?: string;
  /** `subject`: beyond its retention, the newest event of each subject is kept. */
  readonly compaction?: TypeRetention['compaction'];
}

/** An event type as the catalog lists it: its data schema exported as JSON Schema. */
export interface EventTypeInfo {
  name: string;
  description?: string;
  schema: Record<string, unknown>;
  /** An example of its data: the schema's own `examples[0]` (zod's `.meta({ examples })`), else one made from the schema. */
  example: unknown;
  /** Its own retention, when it has one. */
  retention?: string;
  /** Its compaction, when it has one. */
  compaction?: TypeRetention['compaction'];
  /** `code` for types defined with {@link defineEventType}, `api` for types registered over REST. */
  origin: 'code' | 'api';
}

/** The map from event-type name to data type that typed `publish` and clients use. */
export type EventMapOf<TDefinitions extends readonly EventTypeDefinition[]> = {
  [D in TDefinitions[number] as D['name']]: z.input<D['schema']>;
};

/**
 * Defines an event type in code: `defineEventType('order.created', z.object({...}), { description })`. A
 * `retention` (`90d`) of its own, or `compaction: 'subject'`, that is not valid throws a `ValidationError`.
 */
export function defineEventType<TName extends string, TSchema extends z.ZodType>(
  name: TName,
  schema: TSchema,
  options: { description?: string } & TypeRetention = {},
): EventTypeDefinition<TName, TSchema> {
  assertName(name);
  const { description, ...retention } = options;
  return { name, schema, ...(description ? { description } : {}), ...checkTypeRetention(name, retention) };
}

/** Builds a definition from a JSON Schema, as registered over REST. Throws a ValidationError when it is not one. */
export function eventTypeFromJsonSchema(
  name: string,
  schema: Record<string, unknown> | undefined,
  description?: string,
  retention: TypeRetention = {},
): EventTypeDefinition {
  assertName(name);
  const kept = checkTypeRetention(name, retention);
  let zodSchema: z.ZodType;
  try {
    zodSchema = schema ? z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]) : z.unknown();
  } catch (error) {
    throw new ValidationError(`The schema of "${name}" is not a JSON Schema Herald can use`, [
      { path: ['schema'], message: error instanceof Error ? error.message : String(error) },
    ]);
  }
  return { name, schema: zodSchema, ...(description ? { description } : {}), ...kept };
}

function assertName(name: string): void {
  const result = eventTypeName.safeParse(name);
  if (!result.success) {
    throw new ValidationError(`"${name}" is not a valid event-type name`, toIssues(result.error.issues));
  }
}

interface Entry {
  definition: EventTypeDefinition;
  info: EventTypeInfo;
}

/** How a catalog reloads on a miss (see {@link EventCatalog.reloadOnMiss}). */
export interface ReloadOnMissOptions {
  /** How long, in ms, a name or pattern that a reload left unknown is refused without another reload. @default 1000 */
  recheckAfter?: number;
}

/** The event types a Herald accepts. Unknown types and data failing their schema are refused. */
export class EventCatalog {
  readonly #entries = new Map<string, Entry>();
  #reload: (() => Promise<void>) | undefined;
  #recheckAfter = 1000;
  /** Names and patterns that a reload left unknown → when that reload started; oldest first. */
  readonly #unknownSince = new Map<string, number>();
  /** The next reload, not started yet: every miss until it starts shares it. Resolves to when it started. */
  #nextReload: Promise<number> | undefined;
  /** The last reload, running or done: the next one starts after it. */
  #lastReload: Promise<unknown> = Promise.resolve();

  constructor(definitions: readonly EventTypeDefinition[] = []) {
    for (const definition of definitions) this.add(definition, 'code');
  }

  /**
   * Adds a type. A second definition of the same name is a ConflictError, unless it has the same
   * origin, JSON Schema and description (adding is idempotent).
   */
  add(definition: EventTypeDefinition, origin: EventTypeInfo['origin'], jsonSchema?: Record<string, unknown>): EventTypeInfo {
    const schema = jsonSchema ?? toJsonSchema(definition.schema);
    const existing = this.#entries.get(definition.name);
    if (existing) {
      const same =
        existing.info.origin === origin &&
        canonicalJson(existing.info.schema) === canonicalJson(schema) &&
        existing.info.description === definition.description &&
        existing.info.retention === definition.retention &&
        existing.info.compaction === definition.compaction;
      if (same) return existing.info;
      throw new ConflictError(`Event type "${definition.name}" is already defined`);
    }
    const info: EventTypeInfo = {
      name: definition.name,
      ...(definition.description ? { description: definition.description } : {}),
      schema,
      example: exampleOf(schema),
      ...(definition.retention !== undefined ? { retention: definition.retention } : {}),
      ...(definition.compaction !== undefined ? { compaction: definition.compaction } : {}),
      origin,
    };
    this.#entries.set(definition.name, { definition, info });
    return info;
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  get(name: string): EventTypeInfo | undefined {
    return this.#entries.get(name)?.info;
  }

  list(): EventTypeInfo[] {
    return [...this.#entries.values()].map((entry) => entry.info).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * The catalog's type names that `patterns` match, so that a read of the log asks for exact types (an
   * index range each) rather than scanning every event for a pattern. Undefined for `**`, which is every
   * type, also those the catalog no longer holds. Events of a type no longer in the catalog are found only
   * by its exact name.
   */
  typesMatching(patterns: readonly string[]): string[] | undefined {
    if (patterns.includes('**')) return undefined;
    const names = new Set(patterns.filter((pattern) => !pattern.includes('*')));
    const wildcards = patterns.filter((pattern) => pattern.includes('*'));
    if (wildcards.length > 0) {
      for (const name of this.#entries.keys()) if (wildcards.some((pattern) => patternMatches(pattern, name))) names.add(name);
    }
    return [...names];
  }

  /**
   * Refuses patterns that match no type of the catalog (a typo, most likely) with a 422
   * `unknown-event-type` whose issues point at each one, at `["types", index]`.
   */
  assertKnown(patterns: readonly string[]): void {
    const unknown = this.#unmatched(patterns);
    if (unknown.length === 0) return;
    throw new ValidationError(
      `${unknown.join(', ')} matches no event type in the catalog`,
      unknown.map((pattern) => ({ path: ['types', patterns.indexOf(pattern)], message: `${pattern} matches no event type in the catalog` })),
      'unknown-event-type',
    );
  }

  /** {@link assertKnown}, once a miss has reloaded the catalog (see {@link reloadOnMiss}): only patterns still unknown are refused. */
  async ensureKnown(patterns: readonly string[]): Promise<void> {
    await this.loadMissing(patterns);
    this.assertKnown(patterns);
  }

  /**
   * Makes the catalog read the types defined elsewhere (`reload`: a server's stored types, which
   * another node may have just registered) when it is asked for one it does not have, before refusing it:
   * see {@link loadMissing}.
   */
  reloadOnMiss(reload: () => Promise<void>, options: ReloadOnMissOptions = {}): void {
    this.#reload = reload;
    this.#recheckAfter = options.recheckAfter ?? 1000;
  }

  /**
   * Resolves at once when each of `patterns` (type names, or patterns) matches a type, or no reload is set
   * ({@link reloadOnMiss}). Otherwise resolves after a reload that started after this call, so that it finds
   * what was stored before: one reload runs at a time, and the misses that come meanwhile share the next.
   * A name or pattern that a reload left unknown is not reloaded for again within `recheckAfter` ms, so
   * that a client repeating a typo does not read the store on every request. Rejects when the reload does.
   */
  async loadMissing(patterns: readonly string[]): Promise<void> {
    if (!this.#reload) return;
    const missing = this.#unmatched(patterns);
    const now = Date.now();
    if (missing.every((pattern) => now - (this.#unknownSince.get(pattern) ?? Number.NEGATIVE_INFINITY) < this.#recheckAfter)) return;
    const started = await this.#reloadAfterNow(this.#reload);
    for (const pattern of this.#unmatched(missing)) {
      // Set again, not updated: the map stays in the order of the reloads, oldest first.
      this.#unknownSince.delete(pattern);
      this.#unknownSince.set(pattern, started);
    }
    const forgotten = Date.now() - this.#recheckAfter;
    for (const [pattern, since] of this.#unknownSince) {
      if (since > forgotten) break;
      this.#unknownSince.delete(pattern);
    }
  }

  /** A reload that starts after this call: the one not started yet, else a new one after the last. Resolves to when it started. */
  #reloadAfterNow(reload: () => Promise<void>): Promise<number> {
    if (this.#nextReload) return this.#nextReload;
    const next = this.#lastReload
      .catch(() => {})
      .then(async () => {
        this.#nextReload = undefined;
        const started = Date.now();
        await reload();
        return started;
      });
    this.#nextReload = next;
    this.#lastReload = next;
    return next;
  }

  #unmatched(patterns: readonly string[]): string[] {
    const names = [...this.#entries.keys()];
    return patterns.filter((pattern) => !names.some((name) => patternMatches(pattern, name)));
  }

  /** The rules the pruner applies: the log's limits, with the retention and compaction of each type that has its own. */
  retentionRules(log: { retention: string; maxEvents?: number }): RetentionRules {
    const types = new Map<string, { maxAge?: number; compaction?: TypeRetention['compaction'] }>();
    for (const { definition } of this.#entries.values()) {
      if (definition.retention === undefined && definition.compaction === undefined) continue;
      types.set(definition.name, {
        ...(definition.retention !== undefined ? { maxAge: parseRetention(definition.retention) } : {}),
        ...(definition.compaction !== undefined ? { compaction: definition.compaction } : {}),
      });
    }
    return { maxAge: parseRetention(log.retention, 'HERALD_LOG_RETENTION'), ...(log.maxEvents !== undefined ? { maxEvents: log.maxEvents } : {}), types };
  }

  /** Returns the parsed data, or throws UnknownEventTypeError / ValidationError with the issues. */
  validate(type: string, data: unknown): unknown {
    const entry = this.#entries.get(type);
    if (!entry) throw new UnknownEventTypeError(type);
    const result = entry.definition.schema.safeParse(data);
    if (!result.success) {
      throw new ValidationError(
        `The data does not match the schema of "${type}"`,
        toIssues(result.error.issues).map((issue) => ({ ...issue, path: ['data', ...issue.path] })),
      );
    }
    return result.data;
  }
}

/** JSON with object keys sorted, so schemas that differ only in key order compare equal. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, member: unknown) =>
    member !== null && typeof member === 'object' && !Array.isArray(member)
      ? Object.fromEntries(Object.entries(member).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : member,
  );
}

function toJsonSchema(schema: z.ZodType): Record<string, unknown> {
  try {
    return z.toJSONSchema(schema, { unrepresentable: 'any' }) as Record<string, unknown>;
  } catch {
    return {};
  }
}
