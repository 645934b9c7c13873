/**
 * `pnpm release`: `changeset version` (the versions and changelogs that .changeset/ asks for), then
 * `pnpm -r publish` (every public package whose version npm does not have yet; each one's prepack builds it).
 * Commit what it changed afterwards; `pnpm changeset tag` tags the versions.
 *
 * `pnpm release --dry-run` changes nothing and needs no network: it runs `changeset version` on a scratch
 * copy of the workspace's manifests and changesets and prints the versions it would make, then packs
 * every public package as publishing would (`pnpm publish --dry-run`: its prepack builds it).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const run = (command, args, cwd = root) => execFileSync(command, args, { cwd, stdio: 'inherit' });
const workspace = JSON.parse(execFileSync('pnpm', ['ls', '--recursive', '--json', '--depth', '-1'], { cwd: root, encoding: 'utf8' }));
const versionOf = (directory) => JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')).version;

if (!process.argv.includes('--dry-run')) {
  run('pnpm', ['exec', 'changeset', 'version']);
  // The versions just made are not committed yet: publishing them is what this command is for.
  run('pnpm', ['--recursive', 'publish', '--no-git-checks']);
  console.log('\nPublished. Commit the new versions and changelogs, and tag them with `pnpm changeset tag`.');
} else {
  const scratch = mkdtempSync(join(tmpdir(), 'herald-release-'));
  try {
    for (const file of ['.changeset', 'package.json', 'pnpm-workspace.yaml']) cpSync(join(root, file), join(scratch, file), { recursive: true });
    for (const { path } of workspace) {
      mkdirSync(join(scratch, relative(root, path)), { recursive: true });
      cpSync(join(path, 'package.json'), join(scratch, relative(root, path), 'package.json'));
    }
    execFileSync(join(root, 'node_modules/.bin/changeset'), ['version'], { cwd: scratch, stdio: 'ignore' });
    console.log('changeset version would make:');
    for (const { name, path, private: internal } of workspace) {
      const [now, next] = [versionOf(path), versionOf(join(scratch, relative(root, path)))];
      if (!internal) console.log(`  ${name} ${now}${now === next ? ' (no change)' : ` -> ${next}`}`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  // One package at a time: `pnpm --recursive publish` asks the registry which versions it has first.
  for (const { path, private: internal } of workspace) if (!internal) run('pnpm', ['publish', '--dry-run', '--no-git-checks'], path);
}
