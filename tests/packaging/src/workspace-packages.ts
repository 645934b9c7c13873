import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

/** The repository's root. */
export const root = resolve(import.meta.dirname, '../../..');

/** A package.json, as far as these tests read it. */
export interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
  engines?: Record<string, string>;
  repository?: string | { type?: string; url?: string; directory?: string };
  sideEffects?: boolean | string[];
  exports?: unknown;
  main?: string;
  types?: string;
  bin?: string | Record<string, string>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

export interface WorkspacePackage {
  name: string;
  /** Absolute. */
  directory: string;
  /** From the repository's root, e.g. `packages/core`. */
  path: string;
  manifest: Manifest;
}

export function readManifest(directory: string): Manifest {
  return JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as Manifest;
}

/** Every package of the workspace, as pnpm lists them (from pnpm-workspace.yaml). */
export function workspacePackages(): WorkspacePackage[] {
  const listed = JSON.parse(execFileSync('pnpm', ['ls', '--recursive', '--json', '--depth', '-1'], { cwd: root, encoding: 'utf8' })) as { path: string }[];
  return listed
    .filter(({ path }) => path !== root)
    .map(({ path }) => ({ directory: path, path: relative(root, path), manifest: readManifest(path) }))
    .map((found) => ({ ...found, name: found.manifest.name }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The packages that get published: every one not marked private. */
export function publicPackages(): WorkspacePackage[] {
  return workspacePackages().filter((found) => !found.manifest.private);
}

/** A package packed: its tarball, and the tarball's contents unpacked next to it. */
export interface Packed {
  tarball: string;
  unpacked: string;
}

/**
 * Packs `found` as `pnpm publish` would into a folder of its own below `destination`, and unpacks it there.
 * Its `prepack` does not run: pack it once its prepack has built it (`pnpm release --dry-run` runs them all).
 */
export function pack(found: WorkspacePackage, destination: string): Packed {
  const folder = join(destination, found.name.replace('/', '__'));
  rmSync(folder, { recursive: true, force: true });
  const unpacked = join(folder, 'package');
  mkdirSync(unpacked, { recursive: true });
  execFileSync('pnpm', ['pack', '--config.ignore-scripts=true', '--pack-destination', folder], { cwd: found.directory, stdio: ['ignore', 'ignore', 'pipe'] });
  const tarball = join(folder, readdirSync(folder).find((file) => file.endsWith('.tgz')) as string);
  execFileSync('tar', ['-xzf', tarball, '-C', folder]);
  return { tarball, unpacked };
}
