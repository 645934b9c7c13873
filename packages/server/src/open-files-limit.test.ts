import { execFileSync } from 'node:child_process';
import { describe, expect, it, onTestFinished } from 'vitest';
import { recordingLogger } from '../../testkit/src/recording-logger.js';
import { createHerald } from './create-herald.js';
import { connectionsWithin, openFilesLimit } from './open-files-limit.js';

/** This process's open-files limit as the shell tells it: a child inherits it. */
const shellLimit = () => Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());

/** The warnings a Herald logs at start, given `maxConnections` as the option, or as `HERALD_MAX_CONNECTIONS` with `from: 'env'`. */
async function started(maxConnections: number, from: 'option' | 'env' = 'option') {
  const logger = recordingLogger();
  const setting = from === 'option' ? { env: {}, maxConnections } : { env: { HERALD_MAX_CONNECTIONS: String(maxConnections) } };
  const herald = createHerald({ database: ':memory:', logger, adminKey: 'open-files-test-admin-key-0123456789abcdef', ...setting });
  onTestFinished(() => herald.close());
  await herald.ready;
  return logger.entries.filter((line) => line.level === 'warn').map((line) => line.message);
}

describe('the open-files limit and HERALD_MAX_CONNECTIONS', () => {
  it('reads the limit the process has', () => {
    expect(openFilesLimit()).toBe(shellLimit());
    expect(openFilesLimit('/nonexistent/limits')).toBeUndefined();
  });

  it('leaves a tenth of the limit, and at least 100 files, to what is not a connection', () => {
    expect([65_536, 1_024, 300, 50].map(connectionsWithin)).toEqual([58_982, 921, 200, 1]);
  });

  it('warns at start when the connections allowed leave too little of the limit, and only then, naming the setting that allowed them', async () => {
    const limit = shellLimit();
    expect(await started(limit)).toEqual([
      `maxConnections (${limit}) leaves too little of this process's open-files limit (${limit}): connections past the limit hang or are dropped; raise it (ulimit -n, LimitNOFILE) or lower maxConnections`,
    ]);
    expect(await started(limit, 'env')).toEqual([
      `HERALD_MAX_CONNECTIONS (${limit}) leaves too little of this process's open-files limit (${limit}): connections past the limit hang or are dropped; raise it (ulimit -n, LimitNOFILE) or lower HERALD_MAX_CONNECTIONS`,
    ]);
    expect(await started(Math.floor(limit * 0.9))).toEqual([]);
    expect(await started(Math.floor(limit * 0.9), 'env')).toEqual([]);
  });
});
