import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The repository's root, and this package, whose dependencies a generated package links to. */
const root = resolve(import.meta.dirname, '../../..');
const here = resolve(import.meta.dirname, '..');
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

const turboGen = join(root, 'node_modules/@turbo/gen', readJson(join(root, 'node_modules/@turbo/gen/package.json')).bin.gen);
const tsc = join(here, 'node_modules/typescript/bin/tsc');
const vitest = join(here, 'node_modules/vitest/vitest.mjs');
const biome = join(root, 'node_modules/@biomejs/biome/bin/biome');

/** Where the test keeps its own files (tsconfigs), in this package so that they resolve its dependencies. */
const work = mkdtempSync(join(here, '.tmp-'));
const cleanup: string[] = [work];
/** Seconds each step took, printed at the end. */
const timings: Record<string, number> = {};
afterAll(() => {
  for (const path of cleanup) rmSync(path, { recursive: true, force: true });
  console.log(`generator test, seconds per step: ${JSON.stringify(timings)}`);
});

async function timed<T>(step: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    timings[step] = Math.round((performance.now() - started) / 100) / 10;
  }
}

/** Runs a command with no standard input (a prompt ends it); resolves with what it printed, rejects with it. */
function run(file: string, args: string[], cwd: string): Promise<string> {
  // Not the variables of the vitest running this file, which would confuse the one a command runs.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST')));
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { cwd, env: { ...env, NO_COLOR: '1' }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${relative(root, file)} ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`, { cause: error }));
      else resolve(stdout + stderr);
    });
    child.stdin?.end();
  });
}

/** A copy of the files of the repository the generator reads or changes, in a temporary folder: the repository stays as it is. */
function repositoryFrame(): string {
  const frame = mkdtempSync(join(tmpdir(), 'herald-gen-'));
  cleanup.push(frame);
  for (const file of ['package.json', 'pnpm-workspace.yaml', 'turbo.json', 'tsconfig.json', 'biome.json', 'tests/packaging/package.json']) {
    mkdirSync(dirname(join(frame, file)), { recursive: true });
    cpSync(join(root, file), join(frame, file));
  }
  return frame;
}

/** `pnpm turbo gen transport --args <name> <kind>` in `frame`: turbo runs the @turbo/gen of its own version, which is this one. */
const generate = (frame: string, ...args: string[]) =>
  run(process.execPath, [turboGen, 'run', 'transport', '--args', ...args, '--root', frame, '--config', join(root, 'turbo/generators/config.ts')], frame);

function filesBelow(directory: string): string[] {
  return readdirSync(directory, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(directory, join(entry.parentPath, entry.name)))
    .sort();
}

interface VitestReport {
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: { assertionResults: { ancestorTitles: string[]; title: string; status: string }[] }[];
}

const expectedFiles = {
  push: ['src/{name}-node.test-support.ts', 'src/{name}-transport.test.ts', 'src/{name}-transport.ts'],
  stream: ['src/{name}-transport.test.ts', 'src/{name}-transport.ts'],
  pull: ['src/{name}-transport.test.ts', 'src/{name}-transport.ts'],
};
/** Cases each kind must run: durable delivery for push transports; authorization and revocation on connections for streaming and pull ones, and a pull's own stop. */
const expectedCases = {
  push: [/^loses nothing when killed with SIGKILL/, /^retries a delivery its destination refused/, /^lets a stream token neither subscribe nor change/],
  stream: [/^ends the connections of a revoked key/, /^keeps a stream token's connections within its types/, /^counts its connections against the server's limit/],
  pull: [/^stops gracefully: answers a request waiting for events at once/, /^ends the connections of a revoked key/, /^counts its connections against the server's limit/],
};

describe('pnpm turbo gen transport (issue 14)', () => {
  it('is the @turbo/gen that turbo runs: the same version', () => {
    expect(readJson(join(root, 'node_modules/@turbo/gen/package.json')).version).toBe(readJson(join(root, 'node_modules/turbo/package.json')).version);
  });

  describe('makes a push, a stream and a pull transport, each a package that', () => {
    const kinds = ['push', 'stream', 'pull'] as const;
    type Kind = (typeof kinds)[number];
    /** Each kind's package: its name, the frame it was generated in, and where it is built, next to core. */
    const made = {} as Record<Kind, { name: string; frame: string; placed: string }>;

    beforeAll(async () => {
      await Promise.all(
        kinds.map(async (kind) => {
          const name = `gen-${kind}-${randomBytes(3).toString('hex')}`;
          const frame = repositoryFrame();
          expect(await timed(`${kind}: generate`, () => generate(frame, name, kind))).toContain('Success!');
          // Built where it belongs, next to core, in a folder that neither git, pnpm nor the repository's checks see.
          const placed = join(root, 'packages', `.tmp-${name}`);
          cleanup.push(placed);
          cpSync(join(frame, 'packages', name), placed, { recursive: true });
          // What `pnpm install` would link: this package's dependencies are those of a generated package (checked below).
          symlinkSync(join(here, 'node_modules'), join(placed, 'node_modules'));
          made[kind] = { name, frame, placed };
        }),
      );
    }, 120_000);

    it.each(kinds)('%s: has the files and the publishing fields of a package of the repository, and its place in it', (kind) => {
      const { name, frame } = made[kind];
      const directory = join(frame, 'packages', name);
      const common = ['LICENSE', 'README.md', 'package.json', 'src/index.ts', 'tsconfig.json', 'vitest.config.ts'];
      expect(filesBelow(directory)).toEqual([...common, ...expectedFiles[kind].map((file) => file.replace('{name}', name))].sort());
      expect(readJson(join(frame, 'tsconfig.json')).references).toContainEqual({ path: `packages/${name}` });
      expect(readJson(join(frame, 'tests/packaging/package.json')).devDependencies[`@herald/${name}`]).toBe('workspace:*');
      expect(readFileSync(join(frame, `.changeset/${name}-transport.md`), 'utf8')).toMatch(new RegExp(`^---\\n'@herald/${name}': minor\\n---\\n\\n\\S`));
      const manifest = readJson(join(directory, 'package.json'));
      expect(manifest).toMatchObject({ name: `@herald/${name}`, license: 'MIT', repository: { directory: `packages/${name}` }, scripts: { prepack: 'tsc -b' } });
      expect(manifest.exports['.']['herald-source']).toBe('./src/index.ts');
      expect(manifest.publishConfig.exports['.']).not.toHaveProperty('herald-source');
      const linked = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies });
      expect(Object.keys(readJson(join(here, 'package.json')).devDependencies), 'the packages a generated one links to').toEqual(expect.arrayContaining(linked));
    });

    it('lints clean, builds with tsc -b, and type-checks with its tests as the repository does (tsconfig.test.json)', async () => {
      for (const kind of kinds) await timed(`${kind}: lint`, () => run(biome, ['check', `packages/${made[kind].name}`], made[kind].frame));
      const placed = kinds.map((kind) => made[kind].placed);
      await timed('build', () => run(process.execPath, [tsc, '-b', ...placed], root));
      for (const directory of placed) expect(existsSync(join(directory, 'dist/index.d.ts'))).toBe(true);
      const check = join(work, 'tsconfig.json');
      const references = ['core', 'outbox', 'server', 'testkit'].map((found) => ({ path: join(root, 'packages', found) }));
      const compilerOptions = { noEmit: true, composite: false, declaration: false, declarationMap: false, sourceMap: false };
      writeFileSync(check, JSON.stringify({ extends: join(root, 'tsconfig.base.json'), compilerOptions, include: placed.map((directory) => join(directory, 'src')), references }));
      await timed('typecheck', () => run(process.execPath, [tsc, '-p', check], here));
    }, 300_000);

    it.concurrent.each(kinds)('%s: passes the suites untouched, as a starting point', async (kind) => {
      const { name, frame, placed } = made[kind];
      const report = join(frame, 'vitest.json');
      await timed(`${kind}: suites`, () => run(process.execPath, [vitest, 'run', '--reporter=json', `--outputFile=${report}`], placed));
      const { numFailedTests, numPendingTests, numTodoTests, testResults } = readJson(report) as VitestReport;
      expect({ numFailedTests, numPendingTests, numTodoTests }).toEqual({ numFailedTests: 0, numPendingTests: 0, numTodoTests: 0 });
      const results = testResults.flatMap((file) => file.assertionResults);
      const suite = results[0]?.ancestorTitles[0] ?? '';
      const [, applicable] = new RegExp(`^transport suite: ${name}, (\\d+) of \\d+ cases`).exec(suite) ?? [];
      expect(results.map(({ ancestorTitles, status }) => [ancestorTitles[0], status])).toEqual(results.map(() => [suite, 'passed']));
      expect(results).toHaveLength(Number(applicable));
      expect(results.map(({ title }) => title)).toEqual(expect.arrayContaining(expectedCases[kind].map((pattern) => expect.stringMatching(pattern))));
    }, 300_000);
  });

  it('refuses a name that is not lower-case words joined by "-", a kind it does not make and a package that exists, writing nothing', async () => {
    const frame = repositoryFrame();
    mkdirSync(join(frame, 'packages/taken/src'), { recursive: true });
    writeFileSync(join(frame, 'packages/taken/src/index.ts'), 'export {};\n');
    const before = filesBelow(frame);
    await expect(generate(frame, 'Bad_Name', 'push')).rejects.toThrow(/lower-case letters and digits/);
    await expect(generate(frame, 'good-name', 'carrier-pigeon')).rejects.toThrow(/carrier-pigeon/);
    await expect(generate(frame, 'taken', 'stream')).rejects.toThrow(/packages\/taken exists already/);
    expect(filesBelow(frame)).toEqual(before);
  }, 60_000);
});
