/**
 * Runs the benchmarks: every `src/*-bench.ts`, or those named (`pnpm bench core server`), each in its
 * own process, one after another. Their markdown goes to stdout, progress to stderr. Exits non-zero
 * when one fails.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');
const suffix = '-bench.ts';

const available = readdirSync(here)
  .filter((file) => file.endsWith(suffix))
  .map((file) => file.slice(0, -suffix.length))
  .sort();
const asked = process.argv.slice(2).filter((arg) => arg !== '--');
const unknown = asked.filter((name) => !available.includes(name.replace(/-bench(\.ts)?$/, '')));
if (unknown.length > 0) {
  console.error(`No such benchmark: ${unknown.join(', ')}. Available: ${available.join(', ')}`);
  process.exit(2);
}
const chosen = asked.length > 0 ? asked.map((name) => name.replace(/-bench(\.ts)?$/, '')) : available;

function runOne(name: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [tsxCli, '--conditions=herald-source', join(here, `${name}${suffix}`)], {
      stdio: 'inherit',
    });
    child.on('error', (error) => {
      console.error(`${name}: ${error.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const failed: string[] = [];
for (const name of chosen) {
  const started = performance.now();
  process.stderr.write(`▶ ${name}${suffix}\n`);
  const code = await runOne(name);
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  process.stderr.write(`${code === 0 ? '✔' : '✘'} ${name}${suffix} (${seconds} s${code === 0 ? '' : `, exit ${code}`})\n`);
  if (code !== 0) failed.push(name);
}
if (failed.length > 0) {
  console.error(`Failed: ${failed.join(', ')}`);
  process.exit(1);
}
