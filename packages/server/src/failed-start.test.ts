import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { recordingLogger } from '../../testkit/src/recording-logger.js';
import { createHerald } from './create-herald.js';

it('a start that fails rejects ready, which the app may catch, and leaves no other promise rejected unhandled', async () => {
  const unhandled: unknown[] = [];
  const record = (reason: unknown) => void unhandled.push(reason);
  process.on('unhandledRejection', record);
  onTestFinished(() => void process.off('unhandledRejection', record));
  // A database under a file: its folder cannot be made.
  const folder = mkdtempSync(join(tmpdir(), 'herald-failed-start-'));
  onTestFinished(() => rmSync(folder, { recursive: true, force: true }));
  writeFileSync(join(folder, 'file'), '');
  const logger = recordingLogger();
  const herald = createHerald({ database: join(folder, 'file', 'herald.db'), logger, env: {} });

  await expect(herald.ready).rejects.toThrow();
  await herald.close();
  // Node reports a rejection nothing handled once the microtasks of its turn have run.
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(unhandled).toEqual([]);
  expect(logger.entries.map((entry) => entry.message)).toContain('Herald failed to start');
  // Awaited, the generated admin key says why there is none.
  await expect(herald.generatedAdminKey).rejects.toThrow();
});
