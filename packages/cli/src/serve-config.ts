import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { EventTypeDefinition, TlsSettings, Transport } from '@herald/core';
import type { HeraldOptions, RedisEndpoint } from '@herald/server';
import { CliError, oneLine } from './cli-error.js';
import { type ConfigProblem, ConfigError, zodProblems } from './config-problems.js';
import { heraldConfigSchema, isRedisConfig, type RedisConfig, redisConfigSchema } from './config-schema.js';
import { loadEventTypes } from './event-type-loader.js';
import { importFile, readJsonFile } from './module-loader.js';
import { checkDatabaseFiles, readTlsFiles } from './tls-files.js';
import { defaultTransports, loadTransports } from './transport-loader.js';

/** The names `herald serve` looks for in the working directory, in this order. */
const configFileNames = ['herald.config.ts', 'herald.config.mts', 'herald.config.js', 'herald.config.mjs', 'herald.config.json'] as const;

/** What `herald serve` runs: createHerald's options, from the config file (if any) and the environment. */
export interface ServeConfig {
  /** The config file read, as given or relative to the working directory; none without one. */
  file?: string;
  options: HeraldOptions & { transports: Transport[]; eventTypes: EventTypeDefinition[] };
}

/** The config file `--config` names, or the first of {@link configFileNames} in `cwd`. */
function findConfigFile(cwd: string, given?: string): string | undefined {
  if (given !== undefined) {
    if (!existsSync(resolve(cwd, given))) throw new CliError('bad-input', `--config: no such file: ${given}`);
    return resolve(cwd, given);
  }
  return configFileNames.map((name) => resolve(cwd, name)).find((path) => existsSync(path));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function readConfig(path: string): Promise<unknown> {
  if (path.endsWith('.json')) return readJsonFile(path);
  const module = await importFile(path);
  if (!('default' in module)) throw new Error('it has no default export (export default defineConfig({ ... }))');
  return module.default;
}

/** A config's `{ url, tls }` at `field`, checked, its TLS files read: what createHerald makes a Redis broker or rate-limit store of. */
async function redisEndpoint(config: RedisConfig, field: 'broker' | 'rateLimitStore', directory: string): Promise<{ endpoint?: RedisEndpoint; problems: ConfigProblem[] }> {
  const checked = redisConfigSchema.safeParse(config);
  if (!checked.success) return { problems: zodProblems(checked.error.issues, [field]) };
  const { url, tls } = checked.data;
  if (!tls) return { endpoint: { url }, problems: [] };
  const read = await readTlsFiles(tls, [field, 'tls'], directory);
  return read.problems.length > 0 ? { problems: read.problems } : { endpoint: { url, tls: read.tls as TlsSettings }, problems: [] };
}

/**
 * Reads and checks the config: every problem, in the shape and in what it names (modules, schema
 * files, transport packages), is collected before a {@link ConfigError} lists them all. Without a
 * config file, the environment variables decide (createHerald reads them) and the default transports
 * are mounted.
 */
export async function loadServeConfig(cwd: string, given?: string, env: NodeJS.ProcessEnv = process.env): Promise<ServeConfig> {
  const path = findConfigFile(cwd, given);
  const directory = path ? dirname(path) : cwd;
  const file = path ? relative(cwd, path) || path : undefined;
  let raw: unknown = {};
  if (path) {
    try {
      raw = await readConfig(path);
    } catch (error) {
      throw new ConfigError(file as string, [{ path: [], message: `cannot load it: ${oneLine(error)}` }]);
    }
  }
  const problems: ConfigProblem[] = [];
  const parsed = heraldConfigSchema.safeParse(raw);
  if (!parsed.success) problems.push(...zodProblems(parsed.error.issues));
  const record = isObject(raw) ? raw : {};

  // Each entry is loaded even when other fields are wrong, so that one run lists every problem.
  const loadedTypes = record.eventTypes !== undefined ? await loadEventTypes(record.eventTypes, directory) : { eventTypes: [], problems: [] };
  const loadedTransports = await loadTransports(record.transports === undefined ? defaultTransports : isObject(record.transports) ? record.transports : {}, directory);
  problems.push(...loadedTypes.problems, ...loadedTransports.problems);
  // createHerald makes a Redis broker or rate-limit store of `{ url, tls }`; the files of `tls` are relative to the config.
  const brokerRedis = isRedisConfig(record.broker) ? await redisEndpoint(record.broker, 'broker', directory) : { problems: [] };
  const rateLimitsRedis = isRedisConfig(record.rateLimitStore) ? await redisEndpoint(record.rateLimitStore, 'rateLimitStore', directory) : { problems: [] };
  const database = typeof record.database === 'string' ? await checkDatabaseFiles(record.database, ['database'], directory) : undefined;
  problems.push(...brokerRedis.problems, ...rateLimitsRedis.problems, ...(database?.problems ?? []));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(file ?? 'herald.config', problems);

  const { transports: _transports, eventTypes: _eventTypes, broker, rateLimitStore, database: _database, ...options } = parsed.data;
  const brokerObject = brokerRedis.endpoint ?? (typeof broker === 'object' && !isRedisConfig(broker) ? broker : undefined);
  const rateLimitObject = rateLimitsRedis.endpoint ?? (typeof rateLimitStore === 'object' && !isRedisConfig(rateLimitStore) ? rateLimitStore : undefined);
  return {
    ...(file !== undefined ? { file } : {}),
    options: {
      ...options,
      // A SQLite file is relative to the config, as every path in it; `:memory:` and URLs stay as they are.
      ...(database !== undefined ? { database: /^(?::memory:$|[a-z][a-z0-9+.-]*:)/i.test(database.url) ? database.url : resolve(directory, database.url) } : {}),
      // A URL goes where createHerald reads it; a broker or a store made in the config, or `{ url, tls }` (its files read), is given as it is.
      ...(brokerObject ? { broker: brokerObject } : {}),
      ...(rateLimitObject ? { rateLimitStore: rateLimitObject } : {}),
      env: {
        ...env,
        ...(typeof broker === 'string' ? { HERALD_BROKER: broker } : {}),
        ...(typeof rateLimitStore === 'string' ? { HERALD_RATE_LIMIT_STORE: rateLimitStore } : {}),
      },
      transports: loadedTransports.transports,
      eventTypes: loadedTypes.eventTypes,
    },
  };
}
