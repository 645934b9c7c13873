import { z } from 'zod';
import { ValidationError } from './errors.js';

const durationUnits = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A retention: a whole number of at least 1 and a unit, `s`, `m`, `h` or `d` (`90s`, `15m`, `12h`, `30d`). */
export const retentionDuration = z
  .string()
  .regex(/^[1-9]\d{0,8}[smhd]$/, 'must be a whole number of at least 1 and a unit: s, m, h or d (e.g. 90s, 15m, 12h, 30d)');

/** How a type is compacted beyond its retention: `subject` keeps the newest event of each subject. */
export const compactionMode = z.enum(['subject'], { error: 'must be "subject" (keep the newest event of each subject)' });

export type CompactionMode = z.infer<typeof compactionMode>;

/** What an event type keeps: its own retention instead of the log's, and its compaction. */
export interface TypeRetention {
  /** How long its events are kept, e.g. `90d`. @default the log's retention */
  retention?: string;
  /** `subject`: beyond the retention, the newest event of each subject is kept. @default none */
  compaction?: CompactionMode;
}

/** `30d` → ms; throws a `ValidationError` (422, or a startup error) naming `what` for anything else (`0`, `-1d`, `abc`). */
export function parseRetention(text: string, what = 'retention'): number {
  const parsed = retentionDuration.safeParse(text);
  if (!parsed.success) {
    throw new ValidationError(`${what} "${text}" ${parsed.error.issues[0]?.message ?? 'is not a duration'}`, [
      { path: [what], message: parsed.error.issues[0]?.message ?? 'is not a duration' },
    ]);
  }
  return Number(text.slice(0, -1)) * durationUnits[text.at(-1) as keyof typeof durationUnits];
}

/** Checks a type's retention options; throws a `ValidationError` naming the type. */
export function checkTypeRetention(name: string, options: TypeRetention): TypeRetention {
  const parsed = z.object({ retention: retentionDuration.optional(), compaction: compactionMode.optional() }).safeParse(options);
  if (!parsed.success) {
    throw new ValidationError(
      `The retention of "${name}" is not valid: ${parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`).join('; ')}`,
      parsed.error.issues.map((issue) => ({ path: issue.path.map((part) => (typeof part === 'symbol' ? String(part) : part)), message: issue.message })),
    );
  }
  return {
    ...(parsed.data.retention !== undefined ? { retention: parsed.data.retention } : {}),
    ...(parsed.data.compaction !== undefined ? { compaction: parsed.data.compaction } : {}),
  };
}

/** What the log keeps, as the pruner applies it: the log's limits, and each type's own. */
export interface RetentionRules {
  /** Events older than this (ms) are pruned, unless their type says otherwise. */
  maxAge: number;
  /** At most this many of the newest `seq`s are kept, whatever their type. @default no limit */
  maxEvents?: number;
  /** The types with a retention or a compaction of their own. */
  types: ReadonlyMap<string, { maxAge?: number; compaction?: CompactionMode }>;
}
