import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { root } from './workspace-packages.js';

/**
 * npm's cache for these installs, under the repository's ignored node_modules: the first run downloads
 * the third-party packages, later ones install them from here.
 */
export const npmCache = join(root, 'node_modules/.cache/herald-packaging/npm');

/** The environment of a stranger's shell: none of the `npm_*` and `PNPM_*` settings that `pnpm test` hands its scripts. */
export function strangersEnvironment(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(npm_|pnpm_|PNPM_|INIT_CWD$)/i.test(name)));
  // Node's headers cannot be downloaded here: native addons build against the installed ones.
  if (existsSync('/usr/include/node')) env.npm_config_nodedir = '/usr';
  return { ...env, npm_config_cache: npmCache };
}

export interface StrangerProject {
  directory: string;
  /** Runs a command in the project, as its developer would; returns its stdout, or throws with its output. */
  run(command: string, args: string[], options?: ExecFileSyncOptions): string;
}

/** A new npm project outside the workspace (in the system's temporary folder) with `dependencies` and `devDependencies`, not installed yet. */
export function strangerProject(dependencies: Record<string, string>, devDependencies: Record<string, string>): StrangerProject {
  const directory = mkdtempSync(join(tmpdir(), 'herald-stranger-'));
  writeFileSync(join(directory, 'package.json'), JSON.stringify({ name: 'existing-app', private: true, type: 'module', dependencies, devDependencies }, null, 2));
  const env = strangersEnvironment();
  return {
    directory,
    run(command, args, options = {}) {
      try {
        return execFileSync(command, args, { cwd: directory, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024, ...options }) as string;
      } catch (error) {
        const { stdout, stderr } = error as { stdout?: string; stderr?: string };
        throw new Error(`${command} ${args.join(' ')} failed in ${directory}:\n${stdout ?? ''}\n${stderr ?? ''}`, { cause: error });
      }
    },
  };
}

/**
 * better-sqlite3 downloads a prebuilt binary from GitHub, which CI cannot reach, and then compiles SQLite
 * (two minutes and more on two cores). A binary compiled here goes where prebuild-install keeps the ones it
 * downloaded (`<npm cache>/_prebuilds`, named after the download URL, which holds the version, the Node ABI
 * and the platform), so that an install of the same version unpacks it, as a stranger's machine unpacks the
 * one it downloads, instead of compiling again. `moduleDirectory` is an installed better-sqlite3: the
 * workspace's own before the stranger installs, the stranger's after (for when npm picked another version).
 */
export function keepNativeBuild(moduleDirectory: string): void {
  const binary = 'build/Release/better_sqlite3.node';
  if (!existsSync(join(moduleDirectory, binary))) return;
  const cached = execFileSync(
    process.execPath,
    [
      '-e',
      `const pkg = require('./package.json'); const util = require('prebuild-install/util');
       console.log(util.cachedPrebuild(util.getDownloadUrl({ ...require('prebuild-install/rc')(pkg), pkg })));`,
    ],
    { cwd: moduleDirectory, env: strangersEnvironment(), encoding: 'utf8' },
  ).trim();
  if (existsSync(cached)) return;
  mkdirSync(dirname(cached), { recursive: true });
  execFileSync('tar', ['-czf', cached, '-C', moduleDirectory, binary]);
}

/** Where the workspace's own copy of `name`, a dependency of `packages/core`, is installed. */
export function workspaceModule(name: string): string {
  return dirname(createRequire(join(root, 'packages/core/package.json')).resolve(`${name}/package.json`));
}
