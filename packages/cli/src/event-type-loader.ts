import { isAbsolute, resolve } from 'node:path';
import { defineEventType, type EventTypeDefinition, eventTypeFromJsonSchema, ValidationError } from '@herald/core';
import { oneLine } from './cli-error.js';
import { type ConfigProblem, formatPath, zodProblems } from './config-problems.js';
import { eventTypeObject, isZodSchema } from './config-schema.js';
import { importFile, importPackage, type ModuleNamespace, readJsonFile } from './module-loader.js';

type Path = readonly PropertyKey[];

/** What the config's `eventTypes` gave: the definitions, and what was wrong. */
export interface LoadedEventTypes {
  eventTypes: EventTypeDefinition[];
  problems: ConfigProblem[];
}

function isDefinition(value: unknown): value is EventTypeDefinition {
  return typeof value === 'object' && value !== null && typeof (value as { name?: unknown }).name === 'string' && isZodSchema((value as { schema?: unknown }).schema);
}

/** `./types.ts`, `../x.js`, `/abs/path.ts` are files; anything else is a package. */
function isPath(specifier: string): boolean {
  return specifier.startsWith('.') || isAbsolute(specifier);
}

/** Every `defineEventType(...)` a module exports, alone or in arrays. */
function definitionsIn(module: ModuleNamespace): EventTypeDefinition[] {
  const found = new Set<EventTypeDefinition>();
  for (const value of Object.values(module)) {
    for (const item of Array.isArray(value) ? value : [value]) if (isDefinition(item)) found.add(item);
  }
  return [...found];
}

/**
 * Loads the config's event types, relative to `directory`: modules (their exported definitions), and
 * objects whose `schema` is a JSON Schema, the path of a JSON Schema file, or a zod schema.
 */
export async function loadEventTypes(sources: unknown, directory: string): Promise<LoadedEventTypes> {
  const problems: ConfigProblem[] = [];
  const found: { definition: EventTypeDefinition; path: Path }[] = [];
  const list = Array.isArray(sources) ? sources : [sources];

  const fromObject = async (value: unknown, path: Path): Promise<void> => {
    const parsed = eventTypeObject.safeParse(value);
    if (!parsed.success) return void problems.push(...zodProblems(parsed.error.issues, path));
    const { name, description, schema, retention, compaction } = parsed.data;
    const kept = { ...(retention !== undefined ? { retention } : {}), ...(compaction !== undefined ? { compaction } : {}) };
    let jsonSchema = isZodSchema(schema) || typeof schema === 'string' ? undefined : schema;
    if (typeof schema === 'string') {
      try {
        jsonSchema = (await readJsonFile(resolve(directory, schema))) as Record<string, unknown>;
      } catch (error) {
        return void problems.push({ path: [...path, 'schema'], message: oneLine(error) });
      }
    }
    try {
      const definition = isZodSchema(schema)
        ? defineEventType(name, schema, { ...(description ? { description } : {}), ...kept })
        : eventTypeFromJsonSchema(name, jsonSchema, description, kept);
      found.push({ definition, path });
    } catch (error) {
      if (!(error instanceof ValidationError)) return void problems.push({ path, message: oneLine(error) });
      for (const issue of error.issues) problems.push({ path: [...path, issue.path[0] === 'schema' ? 'schema' : 'name'], message: `${error.message}: ${issue.message}` });
    }
  };

  for (const [index, source] of list.entries()) {
    const path = Array.isArray(sources) ? ['eventTypes', index] : ['eventTypes'];
    if (typeof source !== 'string' || source === '') {
      if (typeof source === 'object' && source !== null && !Array.isArray(source)) await fromObject(source, path);
      else problems.push({ path, message: 'expected a module path or an object { name, description?, schema?, retention?, compaction? }' });
      continue;
    }
    if (source.endsWith('.json')) {
      problems.push({ path, message: `a JSON Schema file goes in an object: { "name": "order.created", "schema": "${source}" }` });
      continue;
    }
    let module: ModuleNamespace | undefined;
    try {
      module = isPath(source) ? await importFile(resolve(directory, source)) : await importPackage(source, directory);
    } catch (error) {
      problems.push({ path, message: `cannot load "${source}": ${oneLine(error)}` });
      continue;
    }
    if (!module) {
      problems.push({ path, message: `the package "${source}" is not installed` });
      continue;
    }
    const definitions = definitionsIn(module);
    if (definitions.length === 0) problems.push({ path, message: `"${source}" exports no event types (made with defineEventType)` });
    for (const definition of definitions) found.push({ definition, path });
  }

  const byName = new Map<string, { definition: EventTypeDefinition; path: Path }>();
  for (const entry of found) {
    const first = byName.get(entry.definition.name);
    if (!first) byName.set(entry.definition.name, entry);
    else if (first.definition !== entry.definition) {
      problems.push({ path: entry.path, message: `"${entry.definition.name}" is defined twice (first at ${formatPath(first.path)})` });
    }
  }
  return { eventTypes: [...byName.values()].map((entry) => entry.definition), problems };
}
