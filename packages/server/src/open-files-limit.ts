import { readFileSync } from 'node:fs';

/** The files this process may hold open (its soft limit, `ulimit -n`), where the system says (Linux); undefined elsewhere, or when unlimited. */
export function openFilesLimit(limits = '/proc/self/limits'): number | undefined {
  try {
    const soft = /^Max open files\s+(\d+)/m.exec(readFileSync(limits, 'utf8'))?.[1];
    return soft === undefined ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/**
 * The connections `limit` open files leave room for: all but a tenth of them, and at least 100, which are for
 * the process's own files and the requests and refusals of the moment.
 */
export function connectionsWithin(limit: number): number {
  return Math.max(1, Math.min(Math.floor(limit * 0.9), limit - 100));
}

/**
 * Why `maxConnections` cannot be held with `limit` open files, or undefined when it can (or either is unknown); the
 * message calls it by its `name`, the option's or the environment variable's, whichever set it.
 */
export function openFilesShortfall(maxConnections: { value: number; name: string } | undefined, limit = openFilesLimit()): string | undefined {
  if (maxConnections === undefined || limit === undefined || maxConnections.value <= connectionsWithin(limit)) return undefined;
  const { value, name } = maxConnections;
  return `${name} (${value}) leaves too little of this process's open-files limit (${limit}): connections past the limit hang or are dropped; raise it (ulimit -n, LimitNOFILE) or lower ${name}`;
}
