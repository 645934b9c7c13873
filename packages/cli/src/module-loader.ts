import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { oneLine } from './cli-error.js';

/** What `import()` gives: the module's exports by name. */
export type ModuleNamespace = Record<string, unknown>;

let typescriptImport: Promise<(url: string) => Promise<ModuleNamespace>> | undefined;

/**
 * tsx's loader, in a namespace of this command's own: it compiles the TypeScript files this command
 * imports (and what they import), whatever the project's package.json `type`, and nothing else of the
 * process. One namespace for the whole run, so that a module named twice is one module.
 *
 * Both of tsx's hooks, as its `tsImport` registers them: a `.ts` file of a CommonJS package (a package.json
 * without `"type": "module"`) is compiled to CommonJS, its `import`s to `require`s, which the CommonJS hook
 * compiles in turn. tsx's ESM hook alone, registered for the whole process, made Node load such a file
 * as CommonJS and then refuse it (`Cannot require() ES Module ... in a cycle`).
 */
function typescriptImporter(): Promise<(url: string) => Promise<ModuleNamespace>> {
  typescriptImport ??= Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]).then(([esm, cjs]) => {
    const namespace = `herald-cli-${randomUUID()}`;
    cjs.register({ namespace });
    const scoped = esm.register({ namespace });
    return (url: string) => scoped.import(url, import.meta.url) as Promise<ModuleNamespace>;
  });
  return typescriptImport;
}

/**
 * A CommonJS module's exports as the module's namespace: Node gives `module.exports` as `default`, and
 * for a module compiled from ESM syntax (`__esModule`, as tsx and tsc mark it) those are the exports by name.
 */
function namespaceOf(module: ModuleNamespace): ModuleNamespace {
  const exports = module.default as { __esModule?: unknown } | null | undefined;
  return typeof exports === 'object' && exports !== null && exports.__esModule === true ? (exports as ModuleNamespace) : module;
}

/** The package.json that decides how Node reads a file: the nearest one above it. */
function packageScope(path: string): { file?: string; type?: string } {
  for (let directory = dirname(path); ; directory = dirname(directory)) {
    const file = join(directory, 'package.json');
    if (existsSync(file)) {
      try {
        const { type } = JSON.parse(readFileSync(file, 'utf8')) as { type?: unknown };
        return { file, ...(typeof type === 'string' ? { type } : {}) };
      } catch {
        return { file };
      }
    }
    if (dirname(directory) === directory) return {};
  }
}

/** The syntax errors of ESM syntax in a file Node or tsx reads as CommonJS. */
const esmInCommonJs = /Cannot use import statement outside a module|Unexpected token 'export'|Cannot use 'import\.meta' outside a module|Top-level await is currently not supported with the "cjs" output format/;

/**
 * A module of a CommonJS package that holds ESM syntax Node (or tsx) cannot run as CommonJS: the error,
 * with what to do.
 */
function commonJsError(path: string, error: unknown): Error {
  const { file, type } = packageScope(path);
  const name = basename(path);
  const renamed = name.replace(/\.(js|ts)$/, (_, extension: string) => `.m${extension}`);
  const scope = file ? `${file} ${type ? `says "type": ${JSON.stringify(type)}` : 'has no "type"'}` : 'no package.json says "type": "module"';
  const why = /\.ts$/.test(name)
    ? `a .ts file of a CommonJS package (${scope}) is compiled to CommonJS, which has no top-level await`
    : `Node runs a .js file of a CommonJS package (${scope}) as CommonJS, without import or export`;
  return new Error(`${oneLine(error)}: ${why}; rename it ${renamed}, or set "type": "module" in ${file ?? 'package.json'}`);
}

/**
 * Imports a module file. TypeScript (`.ts`, `.mts`, `.cts`, `.tsx`) goes through tsx's loader, as ESM or
 * CommonJS by Node's rules for the matching JavaScript extension; JavaScript is imported by Node itself.
 */
export async function importFile(path: string): Promise<ModuleNamespace> {
  if (!existsSync(path)) throw new Error(`no such file: ${path}`);
  const url = pathToFileURL(path).href;
  try {
    const module = /\.[cm]?tsx?$/.test(path) ? await (await typescriptImporter())(url) : ((await import(url)) as ModuleNamespace);
    return namespaceOf(module);
  } catch (error) {
    if (/\.(js|ts)$/.test(path) && esmInCommonJs.test(oneLine(error)) && packageScope(path).type !== 'module') throw commonJsError(path, error);
    throw error;
  }
}

function isNotFound(error: unknown, specifier: string): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return code === 'MODULE_NOT_FOUND' && typeof message === 'string' && message.includes(`'${specifier}'`);
}

/**
 * Imports a package as the project in `directory` sees it (its node_modules), else as this command
 * sees it (the packages installed with it). `undefined` when neither has it. For a package this command
 * depends on, `own` imports it as the command's own modules are imported, where the project has none.
 */
export async function importPackage(specifier: string, directory: string, own?: () => Promise<ModuleNamespace>): Promise<ModuleNamespace | undefined> {
  for (const from of [join(directory, 'package.json'), import.meta.filename]) {
    if (from === import.meta.filename && own) return own();
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
