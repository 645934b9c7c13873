import type { Logger } from '@herald/core';

/** One call to the logger. */
export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message?: string;
}

/** A Logger that keeps every entry (its children's too, with their bindings in `fields`), so a test can read what the server logged. */
export function recordingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const at =
      (level: LogEntry['level']) =>
      (fieldsOrMessage: object | string, message?: string): void => {
        if (typeof fieldsOrMessage === 'string') entries.push({ level, fields: { ...bindings }, message: fieldsOrMessage });
        else entries.push({ level, fields: { ...bindings, ...fieldsOrMessage }, ...(message !== undefined ? { message } : {}) });
      };
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (more) => make({ ...bindings, ...more }) };
  };
  return Object.assign(make({}), { entries });
}
