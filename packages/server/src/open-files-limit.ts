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

/** The share of the open-files limit that `maxConnections` may take: the rest is for the requests, refusals and files of the moment. */
const connectionsShare = 0.9;

/** Why `maxConnections` cannot be held with `limit` open files, or undefined when it can (or either is unknown). */
export function openFilesShortfall(maxConnections: number | undefined, limit = openFilesLimit()): string | undefined {
  if (maxConnections === undefined || limit === undefined || maxConnections <= limit * connectionsShare) return undefined;
  return `HERALD_MAX_CONNECTIONS (${maxConnections}) leaves too little of this process's open-files limit (${limit}): connections past the limit wait unanswered; raise it (ulimit -n, LimitNOFILE) or lower HERALD_MAX_CONNECTIONS`;
}
