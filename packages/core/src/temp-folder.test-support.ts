import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

/** A new folder of the system's temporary folder, removed with all it holds when the test that asked for it finishes. */
export function tempFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'herald-'));
  onTestFinished(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

/** The path of a SQLite database, `herald.db`, in a {@link tempFolder} of its own. */
export function tempDatabase(): string {
  return join(tempFolder(), 'herald.db');
}
