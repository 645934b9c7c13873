import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const here = resolve(import.meta.dirname, '..');
const guide = 'docs/guides/writing-a-transport.md';
const run = promisify(execFile);

/** Each TypeScript block of the guide, under the file name its first line gives (`// mqtt-transport.ts`), else `block-<n>.ts`. */
function samples(): { file: string; code: string }[] {
  const blocks = [...readFileSync(join(root, guide), 'utf8').matchAll(/^```ts\n([\s\S]*?)^```$/gm)];
  return blocks.map(([, code = ''], index) => ({ file: /^\/\/ ([\w.-]+\.ts)\n/.exec(code)?.[1] ?? `block-${index + 1}.ts`, code }));
}

// In this package, so that the samples import what it depends on (mqtt included), as a transport package would.
const directory = mkdtempSync(join(here, '.tmp-guide-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** Runs one of the guide's test files with vitest, as its author would; resolves with the titles of its tests, every one passed. */
async function runGuideTest(file: string): Promise<string[]> {
  const config = `import { defineProject, mergeConfig } from 'vitest/config';
import shared from ${JSON.stringify(join(root, 'vitest.shared.js'))};
export default mergeConfig(shared, defineProject({ test: { name: 'guide', include: [${JSON.stringify(file)}] } }));
`;
  writeFileSync(join(directory, 'vitest.config.ts'), config);
  const report = join(directory, 'vitest.json');
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST')));
  const vitest = join(here, 'node_modules/vitest/vitest.mjs');
  await run(process.execPath, [vitest, 'run', '--reporter=json', `--outputFile=${report}`], { cwd: directory, env, encoding: 'utf8' }).catch(
    (error: { stdout: string; stderr: string }) => {
      throw new Error(`the guide's ${file} failed:\n${error.stdout}\n${error.stderr}`);
    },
  );
  const { numFailedTests, numPendingTests, testResults } = JSON.parse(readFileSync(report, 'utf8'));
  const results: { title: string; status: string }[] = testResults.flatMap((found: { assertionResults: unknown[] }) => found.assertionResults);
  expect({ numFailedTests, numPendingTests }).toEqual({ numFailedTests: 0, numPendingTests: 0 });
  expect(results.length, 'tests run').toBeGreaterThan(0);
  expect(results.map(({ status }) => status)).toEqual(results.map(() => 'passed'));
  return results.map(({ title }) => title);
}

describe(`${guide} (issue 14)`, () => {
  beforeAll(() => {
    for (const { file, code } of samples()) writeFileSync(join(directory, file), code);
  });

  it('has a sample of each kind of transport and its test, each block a file of its own', () => {
    const files = samples().map(({ file }) => file);
    expect(files).toEqual(
      expect.arrayContaining([
        'mqtt-transport.ts',
        'ndjson-transport.ts',
        'long-poll-transport.ts',
        'mqtt-transport.test.ts',
        'mqtt-node.test-support.ts',
        'ndjson-transport.test.ts',
        'long-poll-transport.test.ts',
      ]),
    );
    expect(new Set(files).size, 'two blocks claim one file').toBe(files.length);
  });

  it('compiles: every TypeScript block type-checks, strict, against the packages of the workspace', async () => {
    // The packages' declarations, built by `^build` (turbo.json), rather than their sources again.
    const references = ['core', 'outbox', 'server', 'testkit'].map((found) => ({ path: join(root, 'packages', found) }));
    const compilerOptions = { noEmit: true, composite: false, declaration: false, declarationMap: false, sourceMap: false };
    writeFileSync(join(directory, 'tsconfig.json'), JSON.stringify({ extends: join(root, 'tsconfig.base.json'), compilerOptions, include: ['*.ts'], references }));
    const tsc = join(here, 'node_modules/typescript/bin/tsc');
    const failed = await run(process.execPath, [tsc, '-p', directory], { cwd: directory, encoding: 'utf8' }).then(
      () => '',
      (error: { stdout: string }) => error.stdout,
    );
    expect(failed, 'the compiler on the guide').toBe('');
  }, 120_000);

  it('has an MQTT transport that passes the transport suite, push cases included, against the broker on 127.0.0.1:1883', async () => {
    const titles = await runGuideTest('mqtt-transport.test.ts');
    expect(titles).toEqual(expect.arrayContaining([expect.stringMatching(/^loses nothing when killed with SIGKILL/), expect.stringMatching(/^retries a delivery/)]));
  }, 240_000);

  it('has an ndjson streaming transport that passes the transport suite through its connect harness, revocation and limits included', async () => {
    const titles = await runGuideTest('ndjson-transport.test.ts');
    expect(titles).toEqual(expect.arrayContaining([expect.stringMatching(/^ends the connections of a revoked key/), 'delivers exactly the matching events, in seq order']));
  }, 240_000);

  it('has a long-poll transport that passes the transport suite through the pull harness, its stop case included', async () => {
    const titles = await runGuideTest('long-poll-transport.test.ts');
    expect(titles).toEqual(expect.arrayContaining([expect.stringMatching(/^stops gracefully: answers a request waiting/), 'delivers exactly the matching events, in seq order']));
  }, 240_000);
});
