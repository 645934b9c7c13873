import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { sqliteStore } from '@herald/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../../packages/core/src/temp-folder.test-support.js';

const root = resolve(import.meta.dirname, '../..');

interface Running {
  child: ChildProcess;
  url: string;
  adminKey: string;
  exited: Promise<number | null>;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
}

/** Starts the demo as `pnpm start` does, on an ephemeral port and a fresh database, and reads what it prints. */
async function startDemo(database: string): Promise<Running> {
  // Node with tsx's loader, as `pnpm start` runs it: the tsx CLI would relay SIGTERM to its child and
  // SIGKILL it if a busy event loop does not answer within 30 ms.
  const child = spawn(process.execPath, ['--conditions=herald-source', '--import', 'tsx', 'src/main.ts'], {
    cwd: join(root, 'apps/demo'),
    env: { ...process.env, PORT: '0', HERALD_DATABASE: database, HERALD_LOG_LEVEL: 'warn', HERALD_ADMIN_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  let output = '';
  const found = await new Promise<{ url: string; adminKey: string }>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`the demo did not start:\n${output}`)), 30_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
      const adminKey = /Generated an admin key[^"\n]*: (hk_\w+)/.exec(output)?.[1];
      if (url && adminKey) {
        clearTimeout(timer);
        done({ url, adminKey });
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    void exited.then((code) => fail(new Error(`the demo exited with ${code}:\n${output}`)));
  });
  return { child, exited, output: () => output, ...found };
}

describe('the demo process', () => {
  it('starts like `pnpm start`, answers /healthz, and stops gracefully on SIGTERM without losing an acknowledged publish', async () => {
    const database = tempDatabase();
    const demo = await startDemo(database);
    onTestFinished(() => {
      demo.child.kill('SIGKILL');
    });

    expect(await (await fetch(`${demo.url}/healthz`)).json()).toEqual({ status: 'ok' });
    // createHerald logs the generated key once, at warn level; the demo does not print it again.
    expect(demo.output().split(demo.adminKey)).toHaveLength(2);
    expect(demo.output()).toMatch(/"level":40[^\n]*Generated an admin key/);

    const acknowledged: string[] = [];
    let stop = false;
    const publisher = async () => {
      for (let n = 0; !stop; n++) {
        try {
          const response = await fetch(`${demo.url}/v1/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${demo.adminKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ type: 'invoice.paid', data: { invoiceId: `inv-${n}`, amount: n } }),
          });
          if (response.status === 202) acknowledged.push(((await response.json()) as { id: string }).id);
        } catch {
          return;
        }
      }
    };
    const publishers = [publisher(), publisher(), publisher()];
    while (acknowledged.length < 50) await new Promise((done) => setTimeout(done, 10));
    demo.child.kill('SIGTERM');
    expect(await demo.exited).toBe(0);
    stop = true;
    await Promise.all(publishers);

    const store = sqliteStore({ path: database });
    await store.init();
    const log = await store.read({ after: 0, limit: 100_000 });
    await store.close();
    const logged = new Set(log.map((event) => event.id));
    expect(acknowledged.filter((id) => !logged.has(id))).toEqual([]);
  });
});
