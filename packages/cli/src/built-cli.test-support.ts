import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The tests run `herald` as it is published, from `dist/` (a start through tsx, compiling the sources, took three to four
 * times the CPU). Builds it first, with the packages the tests' projects link beside it (`@herald/amqp`, `@herald/redis`):
 * `tsc -b` does nothing when the builds are up to date, as they are under `pnpm test`, whose turbo builds them first.
 */
export default function buildTheCli(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const packages = ['cli', 'amqp', 'redis'].map((name) => fileURLToPath(new URL(`../../${name}`, import.meta.url)));
  execFileSync(process.execPath, [tsc, '-b', ...packages], { stdio: 'inherit' });
}
