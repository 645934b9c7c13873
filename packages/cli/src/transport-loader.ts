import { isAbsolute, resolve } from 'node:path';
import type { Transport } from '@herald/core';
import { oneLine } from './cli-error.js';
import { type ConfigProblem, zodProblems } from './config-problems.js';
import { transportKey, transportOptions } from './config-schema.js';
import { importFile, importPackage, type ModuleNamespace } from './module-loader.js';
import { readTlsFiles } from './tls-files.js';

/** The transports `herald serve` mounts when the config names none. */
export const defaultTransports: Readonly<Record<string, true>> = { webhook: true, websocket: true, sse: true };

/**
 * The transport packages this command depends on, imported as its own modules are: with one @herald/core, the
 * command's. Built, they are the same modules as the files they resolve to; in this repository, where Herald's
 * packages resolve to their TypeScript sources, importing those files took them through the loader of a project's
 * TypeScript, a second copy of @herald/core and all it imports.
 */
const ownTransports: Readonly<Record<string, () => Promise<ModuleNamespace>>> = {
  '@herald/webhook': () => import('@herald/webhook'),
  '@herald/websocket': () => import('@herald/websocket'),
  '@herald/sse': () => import('@herald/sse'),
};

/** What the config's `transports` gave: the started-to-be transports, and what was wrong. */
export interface LoadedTransports {
  transports: Transport[];
  problems: ConfigProblem[];
}

/**
 * Where a transport comes from: a short name `amqp` is the package `@herald/amqp` and its export
 * `amqp` (`long-poll` would be `longPoll`); a module path or a scoped package is its default export.
 */
function transportSource(key: string): { specifier: string; exportName: string; isFile: boolean } {
  if (/^[a-z][a-z0-9-]*$/.test(key)) {
    return { specifier: `@herald/${key}`, exportName: key.replace(/-([a-z0-9])/g, (_, letter: string) => letter.toUpperCase()), isFile: false };
  }
  return { specifier: key, exportName: 'default', isFile: key.startsWith('.') || isAbsolute(key) };
}

function isTransport(value: unknown): value is Transport {
  const candidate = value as Partial<Transport> | undefined;
  return typeof candidate?.name === 'string' && typeof candidate.start === 'function' && typeof candidate.stop === 'function';
}

/**
 * Imports each transport's package or module (as the project in `directory` sees it, else as this
 * command does) and calls its factory with the options, their `tls` files read (see {@link readTlsFiles}).
 * New transport packages need no change here.
 */
export async function loadTransports(entries: Readonly<Record<string, unknown>>, directory: string): Promise<LoadedTransports> {
  const transports: Transport[] = [];
  const problems: ConfigProblem[] = [];
  for (const [key, value] of Object.entries(entries)) {
    const path = ['transports', key];
    const checked = [...zodProblems(transportKey.safeParse(key).error?.issues ?? [], path), ...zodProblems(transportOptions.safeParse(value).error?.issues ?? [], path)];
    if (checked.length > 0) {
      problems.push(...checked);
      continue;
    }
    let options = value === true ? undefined : (value as Record<string, unknown>);
    // `tls: { ca: { "file": ... } }`: the files' PEM text, as the transport's factory takes it.
    if (typeof options?.tls === 'object' && options.tls !== null && !Array.isArray(options.tls)) {
      const read = await readTlsFiles(options.tls as Record<string, unknown>, [...path, 'tls'], directory);
      if (read.problems.length > 0) {
        problems.push(...read.problems);
        continue;
      }
      options = { ...options, tls: read.tls };
    }
    const { specifier, exportName, isFile } = transportSource(key);
    let module: ModuleNamespace | undefined;
    try {
      module = isFile ? await importFile(resolve(directory, specifier)) : await importPackage(specifier, directory, ownTransports[specifier]);
    } catch (error) {
      problems.push({ path, message: `cannot load ${specifier}: ${oneLine(error)}` });
      continue;
    }
    if (!module) {
      problems.push({ path, message: `the package ${specifier} is not installed (npm install ${specifier})` });
      continue;
    }
    const factory = module[exportName];
    if (typeof factory !== 'function') {
      problems.push({ path, message: `${specifier} has no ${exportName === 'default' ? 'default export' : `export "${exportName}"`} that makes a transport` });
      continue;
    }
    try {
      const transport: unknown = await factory(options);
      if (isTransport(transport)) transports.push(transport);
      else problems.push({ path, message: `${specifier}'s ${exportName === 'default' ? 'default export' : `${exportName}()`} did not return a transport` });
    } catch (error) {
      problems.push({ path, message: oneLine(error) });
    }
  }
  return { transports, problems };
}
