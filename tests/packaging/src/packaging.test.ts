import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageProblems, undeclaredTypes } from './package-rules.js';
import { keepNativeBuild, type StrangerProject, strangersEnvironment, strangerProject, workspaceModule } from './stranger-project.js';
import { type Packed, pack, publicPackages, readManifest, root, workspacePackages } from './workspace-packages.js';

const packages = publicPackages();
/** Guides whose TypeScript uses only the public packages and the stranger's own dependencies. */
const guides = ['docs/guides/existing-app.md'];
const packed = new Map<string, Packed>();
const tarballs = mkdtempSync(join(tmpdir(), 'herald-tarballs-'));
/** Seconds each step took, printed at the end. */
const timings: Record<string, number> = {};

async function timed<T>(step: string, work: () => T | Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    timings[step] = Math.round((performance.now() - started) / 100) / 10;
  }
}

const gitStatus = () => execFileSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: root, encoding: 'utf8' });
/** `pnpm release --dry-run` as a maintainer runs it: what it printed, and `git status` before and after. */
const release = { output: '', statusBefore: '', statusAfter: '' };

beforeAll(async () => {
  // The release first: its prepacks build every public package, and the packing below takes those builds
  // as they are, instead of building each package a second time.
  release.statusBefore = gitStatus();
  // Every registry on a closed port: nothing may need the network.
  const offline = { ...strangersEnvironment(), npm_config_registry: 'http://127.0.0.1:9/', pnpm_config_registry: 'http://127.0.0.1:9/' };
  release.output = await timed('release --dry-run', () =>
    execFileSync('pnpm', ['release', '--dry-run'], { cwd: root, env: offline, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  release.statusAfter = gitStatus();
  await timed('pack', () => {
    for (const found of packages) packed.set(found.name, pack(found, tarballs));
  });
}, 600_000);
afterAll(() => {
  rmSync(tarballs, { recursive: true, force: true });
  console.log(`packaging test, seconds per step: ${JSON.stringify(timings)}`);
});

describe('the public packages (issue 17)', () => {
  it('are all built before this test packs them: each is a dependency of this package, so that turbo builds it first', () => {
    expect(packages.map((found) => found.name)).toContain('@herald/core');
    const ours = readManifest(join(root, 'tests/packaging')).devDependencies ?? {};
    const missing = packages.filter((found) => ours[found.name] !== 'workspace:*').map((found) => `"${found.name}": "workspace:*"`);
    expect(missing, 'add to the devDependencies of tests/packaging/package.json').toEqual([]);
  });

  describe.each(packages.map((found) => [found.name, found] as const))('%s', (_name, found) => {
    it('ships its build, a README with a quick start, the MIT LICENSE, the publishing fields, and no tests', () => {
      expect(packageProblems(found, packed.get(found.name) as Packed)).toEqual([]);
    });

    it('declares a dependency for every type its declarations import', () => {
      expect(undeclaredTypes(found, packed.get(found.name) as Packed)).toEqual([]);
    });
  });
});

/** The range the workspace uses for a third-party package, so that the stranger installs the same line. */
function workspaceRange(name: string): string {
  for (const { manifest } of [{ manifest: readManifest(root) }, ...workspacePackages()]) {
    const range = manifest.dependencies?.[name] ?? manifest.devDependencies?.[name];
    if (range !== undefined && !range.startsWith('workspace:')) return range;
  }
  throw new Error(`no package of the workspace depends on ${name}`);
}

describe('installed with npm into an existing app, outside the workspace (issue 17)', () => {
  let project: StrangerProject;

  beforeAll(async () => {
    const own = ['express', 'ws', 'eventsource', 'standardwebhooks', 'zod'];
    const ownTypes = ['typescript', '@types/node', '@types/express', '@types/ws'];
    project = strangerProject(
      {
        ...Object.fromEntries([...packed].map(([name, { tarball }]) => [name, `file:${tarball}`])),
        ...Object.fromEntries(own.map((name) => [name, workspaceRange(name)])),
      },
      Object.fromEntries(ownTypes.map((name) => [name, workspaceRange(name)])),
    );
    keepNativeBuild(workspaceModule('better-sqlite3'));
    await timed('npm install', () => project.run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error']));
    keepNativeBuild(join(project.directory, 'node_modules/better-sqlite3'));
  }, 900_000);
  afterAll(() => {
    if (project) rmSync(project.directory, { recursive: true, force: true });
  });

  it('type-checks, with skipLibCheck off, an app that uses every public package, and the TypeScript of every README and guide to them', async () => {
    copyFileSync(join(import.meta.dirname, '../stranger/existing-app.ts'), join(project.directory, 'existing-app.ts'));
    const imports = packages.map((found, index) => `export * as package${index} from '${found.name}';`);
    writeFileSync(join(project.directory, 'every-package.ts'), `${imports.join('\n')}\n`);
    const documents = [...packages.map((found) => join((packed.get(found.name) as Packed).unpacked, 'README.md')), ...guides.map((guide) => join(root, guide))];
    for (const [index, document] of documents.entries()) {
      for (const [block, [, code]] of [...readFileSync(document, 'utf8').matchAll(/^```ts\n([\s\S]*?)^```$/gm)].entries()) {
        writeFileSync(join(project.directory, `document-${index}-${block}.ts`), `// ${document}, block ${block + 1}\n${code}export {};\n`);
      }
    }
    const compilerOptions = {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2023'],
      types: ['node'],
      strict: true,
      skipLibCheck: false,
      outDir: 'dist',
    };
    writeFileSync(join(project.directory, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['*.ts'] }, null, 2));
    await timed('tsc', () => project.run(join(project.directory, 'node_modules/.bin/tsc'), ['-p', '.']));
  }, 300_000);

  it('runs: Herald under /events next to the routes and the WebSocket of the app; a publish arrives over WebSocket, SSE and a webhook that standardwebhooks verifies', async () => {
    const output = await timed('existing app', () => project.run(process.execPath, ['dist/existing-app.js'], { timeout: 120_000 }));
    const report = JSON.parse(output.trim().split('\n').at(-1) as string);
    const event = { seq: report.published.seq, type: 'order.created' };
    expect(report).toEqual({
      published: { seq: 1 },
      overWebSocket: [event],
      overSse: [event],
      webhooks: [event],
      refused: { status: 422, type: expect.stringMatching(/^application\/problem\+json/), problem: 'urn:herald:problem:validation-failed' },
      heraldAtRoot: 404,
      heraldUnderBasePath: 200,
      openApiServers: [{ url: '/events' }],
      ownRoutes: [{ route: 'before' }, { route: 'after' }],
      ownWebSocket: 'echo: ping',
    });
  }, 180_000);
});

describe('pnpm release --dry-run (issue 17)', () => {
  it('shows the versions the changesets make and packs every public package, offline, changing nothing', () => {
    expect(release.output).toContain('changeset version would make:');
    // A minor change of core is a minor release of its plugins too (their peer ranges stay below 1.0.0), not a 1.0.0.
    expect(release.output).not.toMatch(/-> [1-9]\d*\.\d+\.\d+/);
    for (const found of packages) {
      expect(release.output).toMatch(new RegExp(`^  ${found.name} ${found.manifest.version}( -> \\d+\\.\\d+\\.\\d+| \\(no change\\))$`, 'm'));
      expect(release.output).toContain(`Skip publishing ${found.name}@${found.manifest.version} (dry run)`);
    }
    expect(release.statusAfter).toBe(release.statusBefore);
  });
});
