import type { Logger } from '@herald/core';

/** One call to the logger. */
export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message?: string;
}

/**
 * A Logger that keeps every entry (its children's too, with their bindings in `fields`), so a test can read what the
 * server logged; and in `boundAgain` the keys bound twice, which pino would write twice in one line: by a child
 * whose parent had bound them already, or by an entry whose own fields repeat its logger's bindings.
 */
export function recordingLogger(): Logger & { entries: LogEntry[]; boundAgain: string[] } {
  const entries: LogEntry[] = [];
  const boundAgain: string[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const at =
      (level: LogEntry['level']) =>
      (fieldsOrMessage: object | string, message?: string): void => {
        if (typeof fieldsOrMessage === 'string') return void entries.push({ level, fields: { ...bindings }, message: fieldsOrMessage });
        boundAgain.push(...Object.keys(fieldsOrMessage).filter((key) => key in bindings));
        entries.push({ level, fields: { ...bindings, ...fieldsOrMessage }, ...(message !== undefined ? { message } : {}) });
      };
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (more) => {
        boundAgain.push(...Object.keys(more).filter((key) => key in bindings));
        return make({ ...bindings, ...more });
      },
    };
  };
  return Object.assign(make({}), { entries, boundAgain });
}
