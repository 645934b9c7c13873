import { execFileSync } from 'node:child_process';
import { describe, expect, it, onTestFinished } from 'vitest';
import { recordingLogger } from '../../core/src/logger.test-support.js';
import { createHerald } from './create-herald.js';
import { connectionsWithin, openFilesLimit } from './open-files-limit.js';

/** This process's open-files limit as the shell tells it: a child inherits it. */
const shellLimit = () => Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());

async function started(maxConnections: number) {
  const logger = recordingLogger();
  const herald = createHerald({ database: ':memory:', env: {}, logger, maxConnections, adminKey: 'open-files-test-admin-key-0123456789abcdef' });
  onTestFinished(() => herald.close());
  await herald.ready;
  return logger.lines.filter((line) => line.level === 'warn').map((line) => line.message);
}

describe('the open-files limit and HERALD_MAX_CONNECTIONS', () => {
  it('reads the limit the process has', () => {
    expect(openFilesLimit()).toBe(shellLimit());
    expect(openFilesLimit('/nonexistent/limits')).toBeUndefined();
  });

  it('leaves a tenth of the limit, and at least 100 files, to what is not a connection', () => {
    expect([65_536, 1_024, 300, 50].map(connectionsWithin)).toEqual([58_982, 921, 200, 1]);
  });

  it('warns at start when the connections allowed leave too little of the limit, and only then', async () => {
    const limit = shellLimit();
    expect(await started(limit)).toEqual([
      `HERALD_MAX_CONNECTIONS (${limit}) leaves too little of this process's open-files limit (${limit}): connections past the limit hang or are dropped; raise it (ulimit -n, LimitNOFILE) or lower HERALD_MAX_CONNECTIONS`,
    ]);
    expect(await started(Math.floor(limit * 0.9))).toEqual([]);
  });
});
