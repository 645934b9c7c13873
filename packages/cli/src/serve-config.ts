import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { Broker, EventTypeDefinition, Logger, RateLimitStore, TlsSettings, Transport } from '@herald/core';
import type { HeraldOptions } from '@herald/server';
import { CliError, oneLine } from './cli-error.js';
import { type ConfigProblem, ConfigError, zodProblems } from './config-problems.js';
import { heraldConfigSchema, isRedisConfig, type RedisConfig, redisConfigSchema } from './config-schema.js';
import { deferredLogger } from './deferred-logger.js';
import { loadEventTypes } from './event-type-loader.js';
import { importFile, importPackage, readJsonFile } from './module-loader.js';
import { checkDatabaseFiles, readTlsFiles } from './tls-files.js';
import { defaultTransports, loadTransports } from './transport-loader.js';

/** The names `herald serve` looks for in the working directory, in this order. */
const configFileNames = ['herald.config.ts', 'herald.config.mts', 'herald.config.js', 'herald.config.mjs', 'herald.config.json'] as const;

/** What `herald serve` runs: createHerald's options, from the config file (if any) and the environment. */
export interface ServeConfig {
  /** The config file read, as given or relative to the working directory; none without one. */
  file?: string;
  options: HeraldOptions & { transports: Transport[]; eventTypes: EventTypeDefinition[] };
  /** Gives Herald's logger to what the config had made before there was one (a Redis broker of `{ url, tls }`), which logs to it from then on. */
  logTo(logger: Logger): void;
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

/** What the CLI takes from `@herald/redis` for a config's `{ url, tls }`: a package it does not depend on, which a project that uses Redis installs. */
interface RedisPackage {
  redisBroker(options: RedisMade): Broker;
  redisRateLimits(options: RedisMade): RateLimitStore;
}

/** The options the CLI gives `redisBroker` and `redisRateLimits`. */
interface RedisMade {
  url: string;
  tls?: TlsSettings;
  logger: Logger;
}

/**
 * The Redis broker or rate-limit store of a config's `{ url, tls }` at `field`, its TLS files read, made with the
 * `@herald/redis` of the project (else the one beside the CLI) by `make`.
 */
async function redisFromConfig<T>(
  config: RedisConfig,
  field: 'broker' | 'rateLimitStore',
  directory: string,
  make: (redis: RedisPackage, options: Omit<RedisMade, 'logger'>) => T,
): Promise<{ made?: T; problems: ConfigProblem[] }> {
  const checked = redisConfigSchema.safeParse(config);
  if (!checked.success) return { problems: zodProblems(checked.error.issues, [field]) };
  const { url, tls } = checked.data;
  const read = tls ? await readTlsFiles(tls, [field, 'tls'], directory) : { tls: undefined, problems: [] };
  let redis: RedisPackage | undefined;
  try {
    redis = (await importPackage('@herald/redis', directory)) as RedisPackage | undefined;
  } catch (error) {
    return { problems: [...read.problems, { path: [field], message: `cannot load @herald/redis: ${oneLine(error)}` }] };
  }
  if (!redis) return { problems: [...read.problems, { path: [field], message: 'the package @herald/redis is not installed (npm install @herald/redis)' }] };
  if (read.problems.length > 0) return { problems: read.problems };
  try {
    return { made: make(redis, { url, ...(read.tls ? { tls: read.tls as TlsSettings } : {}) }), problems: [] };
  } catch (error) {
    return { problems: [{ path: [field], message: oneLine(error) }] };
  }
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
  // Made here, before createHerald has a logger: they log to the one it makes (`logTo`).
  const logger = deferredLogger();
  const madeBroker = isRedisConfig(record.broker)
    ? await redisFromConfig<Broker>(record.broker, 'broker', directory, (redis, options) => redis.redisBroker({ ...options, logger: logger.child({ component: 'broker' }) }))
    : { problems: [] };
  const madeRateLimits = isRedisConfig(record.rateLimitStore)
    ? await redisFromConfig<RateLimitStore>(
        record.rateLimitStore,
        'rateLimitStore',
        directory,
        (redis, options) => redis.redisRateLimits({ ...options, logger: logger.child({ component: 'rate-limits' }) }),
      )
    : { problems: [] };
  const database = typeof record.database === 'string' ? await checkDatabaseFiles(record.database, ['database'], directory) : undefined;
  problems.push(...madeBroker.problems, ...madeRateLimits.problems, ...(database?.problems ?? []));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(file ?? 'herald.config', problems);

  const { transports: _transports, eventTypes: _eventTypes, broker, rateLimitStore, database: _database, ...options } = parsed.data;
  const brokerObject = madeBroker.made ?? (typeof broker === 'object' && !isRedisConfig(broker) ? broker : undefined);
  const rateLimitObject = madeRateLimits.made ?? (typeof rateLimitStore === 'object' && !isRedisConfig(rateLimitStore) ? rateLimitStore : undefined);
  return {
    ...(file !== undefined ? { file } : {}),
    logTo: logger.writeTo,
    options: {
      ...options,
      // A SQLite file is relative to the config, as every path in it; `:memory:` and URLs stay as they are.
      ...(database !== undefined ? { database: /^(?::memory:$|[a-z][a-z0-9+.-]*:)/i.test(database.url) ? database.url : resolve(directory, database.url) } : {}),
      // A URL goes where createHerald reads it; a broker or a store made in the config (or here, of `{ url, tls }`) is given as it is.
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
