import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const here = resolve(import.meta.dirname, '..');
const guide = 'docs/guides/writing-a-transport.md';

/** Each TypeScript block of the guide, under the file name its first line gives (`// mqtt-transport.ts`), else `block-<n>.ts`. */
function samples(): { file: string; code: string }[] {
  const blocks = [...readFileSync(join(root, guide), 'utf8').matchAll(/^```ts\n([\s\S]*?)^```$/gm)];
  return blocks.map(([, code = ''], index) => ({ file: /^\/\/ ([\w.-]+\.ts)\n/.exec(code)?.[1] ?? `block-${index + 1}.ts`, code }));
}

// In this package, so that the samples import what it depends on (mqtt included), as a transport package would.
const directory = mkdtempSync(join(here, '.tmp-guide-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe(`${guide} (issue 14)`, () => {
  it('has a sample of each kind of transport, each block a file of its own', () => {
    const files = samples().map(({ file }) => file);
    expect(files).toEqual(expect.arrayContaining(['mqtt-transport.ts', 'ndjson-transport.ts', 'long-poll-transport.ts', 'jsonl-transport.test.ts']));
    expect(new Set(files).size, 'two blocks claim one file').toBe(files.length);
  });

  it('compiles: every TypeScript block type-checks, strict, against the packages of the workspace', async () => {
    for (const { file, code } of samples()) writeFileSync(join(directory, file), code);
    // The packages' declarations, built by `^build` (turbo.json), rather than their sources again.
    const references = ['core', 'outbox', 'server', 'testkit'].map((found) => ({ path: join(root, 'packages', found) }));
    const compilerOptions = { noEmit: true, composite: false, declaration: false, declarationMap: false, sourceMap: false };
    writeFileSync(join(directory, 'tsconfig.json'), JSON.stringify({ extends: join(root, 'tsconfig.base.json'), compilerOptions, include: ['*.ts'], references }));
    const tsc = join(here, 'node_modules/typescript/bin/tsc');
    const failed = await promisify(execFile)(process.execPath, [tsc, '-p', directory], { cwd: directory, encoding: 'utf8' }).then(
      () => '',
      (error: { stdout: string }) => error.stdout,
    );
    expect(failed, 'the compiler on the guide').toBe('');
  }, 120_000);
});
