import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempFolder } from '../temp-folder.test-support.js';
import { sqliteStore } from './sqlite-store.js';

const here = dirname(fileURLToPath(import.meta.url));
const source = (file: string) => pathToFileURL(resolve(here, '..', file)).href;
/**
 * tsx's loader, from the workspace root's devDependencies. The child is `node --import <loader>`, one
 * process, so SIGKILL hits the publisher itself (the `tsx` CLI would put a wrapper process in between).
 */
const tsxLoader = pathToFileURL(createRequire(resolve(here, '../../../../package.json')).resolve('tsx')).href;

/**
 * The child: opens the SQLite store on `path`, publishes through an EventBus from several concurrent
 * loops as fast as it can, and prints `seq id` for every publish that resolved. It never stops by itself.
 */
const child = `
import { EventBus } from ${JSON.stringify(source('event-bus.ts'))};
import { EventCatalog, eventTypeFromJsonSchema } from ${JSON.stringify(source('event-type-catalog.ts'))};
import { memoryBroker } from ${JSON.stringify(source('memory-broker.ts'))};
import { sqliteStore } from ${JSON.stringify(source('sql/sqlite-store.ts'))};

const store = sqliteStore({ path: process.argv[2] });
await store.init();
const catalog = new EventCatalog();
catalog.add(
  eventTypeFromJsonSchema('durable.tick', { type: 'object', properties: { worker: { type: 'integer' }, n: { type: 'integer' } }, required: ['worker', 'n'] }),
  'api',
);
const bus = new EventBus({ store, broker: memoryBroker(), catalog, pollInterval: 50 });
await bus.start();
process.stdout.write('ready ' + process.pid + '\\n');
async function worker(w) {
  for (let n = 0; ; n++) {
    const results = n % 4 === 3
      ? await bus.publishMany([{ type: 'durable.tick', data: { worker: w, n } }, { type: 'durable.tick', data: { worker: w, n: -n } }])
      : [await bus.publish({ type: 'durable.tick', data: { worker: w, n } })];
    // Pipes are synchronous on Linux: once written, a line survives SIGKILL.
    process.stdout.write(results.map(({ event }) => event.seq + ' ' + event.id + '\\n').join(''));
  }
}
await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
`;

describe('durability of acknowledged publishes', () => {
  it(
    'every event acknowledged before SIGKILL is in the log, in order, and the database is intact',
    async () => {
      const dir = tempFolder();
      const script = join(dir, 'child.mjs');
      const path = join(dir, 'herald.db');
      writeFileSync(script, child);

      const proc = spawn(process.execPath, ['--import', tsxLoader, script, path], { stdio: ['ignore', 'pipe', 'pipe'] });
      onTestFinished(() => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      });
      let stdout = '';
      let stderr = '';
      proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
        proc.on('exit', (code, signal) => done({ code, signal })),
      );
      let killedAfter = 0;
      proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        const acks = stdout.split('\n').length - 2; // minus "ready" and the unfinished last line
        if (!killedAfter && acks >= 300) {
          killedAfter = acks;
          proc.kill('SIGKILL');
        }
      });
      const exit = await exited;
      // It was killed, not stopped by an error (which would make the test prove nothing).
      expect(exit, stderr).toEqual({ code: null, signal: 'SIGKILL' });
      expect(killedAfter).toBeGreaterThanOrEqual(300);

      const lines = stdout.split('\n');
      // The process that printed is the one that was killed.
      expect(lines[0]).toBe(`ready ${proc.pid}`);
      // Only complete lines count as acknowledged.
      const acked = lines
        .slice(1, -1)
        .map((line) => line.split(' '))
        .map(([seq, id]) => ({ seq: Number(seq), id: id as string }));
      expect(acked.length).toBeGreaterThanOrEqual(300);
      expect(acked.every((a) => Number.isSafeInteger(a.seq) && a.seq > 0 && a.id.startsWith('evt_'))).toBe(true);
      expect(new Set(acked.map((a) => a.seq)).size).toBe(acked.length);
      expect(new Set(acked.map((a) => a.id)).size).toBe(acked.length);

      const check = new Database(path);
      try {
        expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
      } finally {
        check.close();
      }

      const store = sqliteStore({ path });
      try {
        await store.init();
        const log = await store.read({ after: 0, limit: 1_000_000 });
        for (let i = 1; i < log.length; i++) {
          if (!((log[i]?.seq as number) > (log[i - 1]?.seq as number))) expect.fail(`seq ${log[i]?.seq} follows ${log[i - 1]?.seq}`);
        }
        expect(new Set(log.map((e) => e.id)).size).toBe(log.length);
        const seqOf = new Map(log.map((e) => [e.id, e.seq]));
        const missing = acked.filter((a) => seqOf.get(a.id) !== a.seq);
        expect(missing).toEqual([]);
        expect(log.length).toBeGreaterThanOrEqual(acked.length);
        // Each worker's data survived as published.
        expect(log.every((e) => e.type === 'durable.tick' && typeof (e.data as { n: unknown }).n === 'number')).toBe(true);
        expect(await store.bounds()).toEqual({ oldest: log[0]?.seq, latest: log.at(-1)?.seq });
      } finally {
        await store.close();
      }
    },
    20_000,
  );
});
