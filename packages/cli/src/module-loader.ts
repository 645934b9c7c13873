import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { oneLine } from './cli-error.js';

/** What `import()` gives: the module's exports by name. */
export type ModuleNamespace = Record<string, unknown>;

let typescriptLoader: Promise<void> | undefined;

/** Imports a module file; TypeScript through tsx's loader, registered the first time one is needed. */
export async function importFile(path: string): Promise<ModuleNamespace> {
  if (!existsSync(path)) throw new Error(`no such file: ${path}`);
  if (/\.[cm]?tsx?$/.test(path)) {
    typescriptLoader ??= import('tsx/esm/api').then(({ register }) => void register());
    await typescriptLoader;
  }
  return (await import(pathToFileURL(path).href)) as ModuleNamespace;
}

function isNotFound(error: unknown, specifier: string): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return code === 'MODULE_NOT_FOUND' && typeof message === 'string' && message.includes(`'${specifier}'`);
}

/**
 * Imports a package as the project in `directory` sees it (its node_modules), else as this command
 * sees it (the packages installed with it). `undefined` when neither has it.
 */
export async function importPackage(specifier: string, directory: string): Promise<ModuleNamespace | undefined> {
  for (const from of [join(directory, 'package.json'), import.meta.filename]) {
    let path: string;
    try {
      path = createRequire(from).resolve(specifier);
    } catch (error) {
      if (isNotFound(error, specifier)) continue;
      throw error;
    }
    return importFile(path);
  }
  return undefined;
}

/** Reads and parses a JSON file; the errors say which file and what is wrong, in one line. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read "${path}": ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : oneLine(error)}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`"${path}" is not JSON: ${oneLine(error)}`);
  }
}
