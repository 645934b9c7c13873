import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

/**
 * What a test file's tests push to `cleanups` runs after each test, the last pushed first. `tempDatabase`
 * names a SQLite file in a folder of its own, removed after the test.
 */
export function cleanupsAfterEach() {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return {
    cleanups,
    tempDatabase(): string {
      const dir = mkdtempSync(join(tmpdir(), 'herald-outbox-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      return join(dir, 'herald.db');
    },
  };
}
