import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempFolder } from '../temp-folder.test-support.js';
import { freshDatabase } from './postgres.test-support.js';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * A fresh process that imports @herald/core, uses the stores named in its arguments (`memory`,
 * `postgres <url>`, `sqlite`), and prints the files of better-sqlite3 it has loaded (CommonJS, so in the
 * require cache, its native addon too).
 */
const script = `
import { createRequire } from 'node:module';
const core = await import('@herald/core');
const [, ...uses] = process.argv;
const stores = {
  memory: () => core.memoryStore(),
  postgres: () => core.postgresStore({ url: process.env.POSTGRES_URL }),
  sqlite: () => core.sqliteStore({ path: ':memory:' }),
};
for (const use of uses) {
  const store = stores[use]();
  await store.init();
  const [result] = await store.append([{ specversion: '1.0', id: 'evt_' + use, type: 'order.created', source: '/test', time: new Date().toISOString(), datacontenttype: 'application/json', data: {} }]);
  if (!result.created) throw new Error('not appended');
  await store.close();
}
const loaded = Object.keys(createRequire(import.meta.url).cache).filter((path) => /better[-_]sqlite3/.test(path));
process.stdout.write(JSON.stringify(loaded));
`;

async function betterSqliteFilesLoaded(uses: string[], env: Record<string, string> = {}): Promise<string[]> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--conditions=herald-source', '--import', 'tsx', '--input-type=module', '-e', script, '--', ...uses],
    { cwd: packageDir, env: { ...process.env, ...env }, timeout: 60_000 },
  );
  return JSON.parse(stdout) as string[];
}

describe('better-sqlite3 is loaded only when SQLite is used', () => {
  let postgres: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    postgres = await freshDatabase();
  });
  afterAll(() => postgres.drop());

  it('importing @herald/core and using memoryStore and postgresStore loads none of it', async () => {
    expect(await betterSqliteFilesLoaded(['memory', 'postgres'], { POSTGRES_URL: postgres.url })).toEqual([]);
  }, 60_000);

  it('sqliteStore loads it, with its native addon, when it is used', async () => {
    const loaded = await betterSqliteFilesLoaded(['sqlite']);
    expect(loaded.some((path) => path.endsWith('better_sqlite3.node'))).toBe(true);
    expect(loaded.some((path) => path.endsWith('lib/index.js'))).toBe(true);
  }, 60_000);
});

describe('better-sqlite3 installed without its native module', () => {
  it('is said as such, with what to run, as pnpm leaves it when its build script was not allowed', async () => {
    // A copy of the package as pnpm installs it when it runs no build script: its JavaScript, no build/ folder.
    const folder = tempFolder();
    const installed = dirname(createRequire(join(packageDir, 'package.json')).resolve('better-sqlite3/package.json'));
    const copy = join(folder, 'node_modules', 'better-sqlite3');
    mkdirSync(copy, { recursive: true });
    cpSync(join(installed, 'package.json'), join(copy, 'package.json'));
    cpSync(join(installed, 'lib'), join(copy, 'lib'), { recursive: true });
    for (const dependency of ['bindings', 'file-uri-to-path']) {
      symlinkSync(dirname(createRequire(join(installed, 'package.json')).resolve(`${dependency}/package.json`)), join(folder, 'node_modules', dependency));
    }
    // The store's `import('better-sqlite3')` is led to the copy.
    const hooks = `export async function resolve(specifier, context, next) {
      return specifier === 'better-sqlite3' ? { url: ${JSON.stringify(pathToFileURL(join(copy, 'lib/index.js')).href)}, shortCircuit: true } : next(specifier, context);
    }`;
    const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
    const script = `const { sqliteStore } = await import('@herald/core');
      await sqliteStore({ path: ':memory:' }).init().then(() => console.log('opened'), (error) => console.log(error.message));`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--conditions=herald-source', '--import', 'tsx', '--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', script],
      { cwd: packageDir, timeout: 60_000 },
    );
    expect(stdout.trim()).toBe(
      'sqliteStore cannot open the database at :memory:: better-sqlite3 is installed without its native module (its build script did not run): allow it and install again (pnpm: `pnpm approve-builds`; npm: `npm rebuild better-sqlite3`)',
    );
  }, 60_000);
});
