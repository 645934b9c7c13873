import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import ts from 'typescript';
import { type Manifest, type Packed, readManifest, type WorkspacePackage } from './workspace-packages.js';

/** Files that are tests or serve only tests. */
const testFile = /(^|\/)(__tests__|testing)\/|\.(test|spec)\.[cm]?[jt]sx?$|\.test-support\.[cm]?[jt]s$/;

/** Every file below `directory`, relative to it, with `/`. */
export function filesBelow(directory: string): string[] {
  return (readdirSync(directory, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(directory.length + 1))
    .sort();
}

/** Every string below `value`, with the object keys on the way to it. */
function* leaves(value: unknown, keys: string[] = []): Generator<{ keys: string[]; value: string }> {
  if (typeof value === 'string') yield { keys, value };
  else if (value && typeof value === 'object') for (const [key, inner] of Object.entries(value)) yield* leaves(inner, [...keys, key]);
}

/** The files the manifest points at: `exports`, `main`, `types`, `bin`. */
function entryPoints(manifest: Manifest): string[] {
  const targets = [...leaves(manifest.exports)].map(({ value }) => value);
  for (const field of [manifest.main, manifest.types]) if (field !== undefined) targets.push(field);
  targets.push(...(typeof manifest.bin === 'string' ? [manifest.bin] : Object.values(manifest.bin ?? {})));
  return [...new Set(targets.map((target) => target.replace(/^\.\//, '')))];
}

function quickStartProblems(name: string, readme: string): string[] {
  const start = /^#{1,3} Quick start\s*$/im.exec(readme);
  if (!start) return ['README.md has no "## Quick start" section'];
  const section = readme.slice(start.index + start[0].length).split(/^#{1,2} /m)[0] ?? '';
  return [
    ...(new RegExp(`(npm install|pnpm add)( -[gD])? ${name}\\b`).test(section) ? [] : [`its quick start does not install ${name} (npm install ${name})`]),
    ...(section.includes(`from '${name}'`) ? [] : [`its quick start does not import from '${name}'`]),
  ];
}

/**
 * What is wrong with a packed package, by the rules every public package follows; [] when nothing.
 * `found` is the package in the workspace, `packed` its tarball as `pnpm publish` makes it.
 */
export function packageProblems(found: WorkspacePackage, packed: Packed): string[] {
  const files = filesBelow(packed.unpacked);
  const inTarball = new Set(files);
  const manifest = readManifest(packed.unpacked);
  const problems: string[] = [];

  if (found.manifest.scripts?.prepack === undefined) problems.push('package.json has no "prepack" script that builds it ("prepack": "tsc -b")');
  const entries = entryPoints(manifest);
  if (entries.length === 0) problems.push('package.json names no entry point (exports, main or bin)');
  for (const entry of entries) if (!inTarball.has(entry)) problems.push(`package.json points at ${entry}, which the tarball does not hold (is dist in "files"?)`);
  for (const file of files.filter((path) => /^dist\/.*\.js$/.test(path))) {
    const source = file.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts');
    if (!existsSync(join(found.directory, source))) problems.push(`${file} is built from no ${source}: a stale build; delete ${found.path}/dist and build again`);
  }
  for (const file of files.filter((path) => testFile.test(path))) problems.push(`${file} is a test: leave it out with "files" (e.g. "!src/**/*.test.ts")`);
  for (const file of files.filter((path) => path.endsWith('.tsbuildinfo'))) problems.push(`${file} is the compiler's bookkeeping: leave it out with "files"`);

  if (!inTarball.has('README.md')) problems.push('no README.md');
  else problems.push(...quickStartProblems(manifest.name, readFileSync(join(packed.unpacked, 'README.md'), 'utf8')));
  if (manifest.license !== 'MIT') problems.push(`"license" is ${JSON.stringify(manifest.license)}, not "MIT"`);
  if (!inTarball.has('LICENSE')) problems.push('no LICENSE');
  else if (!/^MIT License\b[\s\S]*Permission is hereby granted/.test(readFileSync(join(packed.unpacked, 'LICENSE'), 'utf8'))) problems.push('LICENSE is not the MIT license');

  if (!manifest.engines?.node) problems.push('no "engines": { "node": ... }');
  const repository = typeof manifest.repository === 'string' ? { url: manifest.repository } : manifest.repository;
  if (!repository?.url) problems.push('no "repository" url');
  else if (repository.directory !== found.path) problems.push(`"repository.directory" is ${JSON.stringify(repository.directory)}, not "${found.path}"`);
  if (manifest.sideEffects === undefined) problems.push('no "sideEffects" (false, or the files that have them)');
  for (const { keys } of leaves(manifest.exports)) if (keys.includes('herald-source')) problems.push(`"exports" keeps the herald-source condition (${keys.join(' > ')}): set "publishConfig.exports" without it`);
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'] as const) {
    for (const [dependency, range] of Object.entries(manifest[field] ?? {})) {
      if (range.startsWith('workspace:')) problems.push(`${field}.${dependency} is still "${range}"`);
    }
  }
  return problems;
}

/** The package an import specifier names: `@types/node` for Node's own modules, `a` for `a/b`, `@s/a` for `@s/a/b`. */
function packageOf(specifier: string): string {
  if (specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0] as string)) return '@types/node';
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
}

/** DefinitelyTyped's name for a package's types: `@types/a`, `@types/s__a`. */
function typesPackageOf(name: string): string {
  return `@types/${name.replace(/^@([^/]+)\//, '$1__')}`;
}

/** Whether TypeScript finds the types of `specifier` in its own package (not in `@types/`), as installed for `found` in the workspace. */
function shipsTypes(found: WorkspacePackage, specifier: string): boolean {
  const options = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext };
  const { resolvedModule } = ts.resolveModuleName(specifier, join(found.directory, 'src/index.ts'), options, ts.sys, undefined, undefined, ts.ModuleKind.ESNext);
  return resolvedModule !== undefined && !resolvedModule.resolvedFileName.includes('/node_modules/@types/');
}

/**
 * The type declarations the package's `.d.ts` files import that its manifest does not bring: each bare
 * import needs the package among `dependencies` or `peerDependencies` with types of its own, or its
 * `@types/` package there; Node's modules need `@types/node`.
 */
export function undeclaredTypes(found: WorkspacePackage, packed: Packed): string[] {
  const manifest = readManifest(packed.unpacked);
  const declared = { ...manifest.dependencies, ...manifest.optionalDependencies, ...manifest.peerDependencies };
  const problems = new Set<string>();
  for (const file of filesBelow(packed.unpacked).filter((path) => path.endsWith('.d.ts'))) {
    const text = readFileSync(join(packed.unpacked, file), 'utf8');
    const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)['"]([^'"]+)['"]|<reference types="([^"]+)"/g)].map((match) => (match[1] ?? match[2]) as string);
    for (const specifier of specifiers.filter((found) => !found.startsWith('.') && !found.startsWith('/'))) {
      const name = packageOf(specifier);
      if (name === manifest.name) continue;
      const typesName = name.startsWith('@types/') ? name : typesPackageOf(name);
      const covered = (name in declared && shipsTypes(found, specifier)) || typesName in declared;
      if (!covered) problems.add(`${file} imports '${specifier}': add ${name === typesName ? name : `${name} (with its types) or ${typesName}`} to "dependencies"`);
    }
  }
  return [...problems];
}
