import { existsSync } from 'node:fs';
import { portal, portalAppDirectory } from '@herald/portal';
import { createHerald, stopOnSignals } from '@herald/server';
import express from 'express';
import { CliError, oneLine } from '../cli-error.js';
import { loadServeConfig } from '../serve-config.js';

/** `herald serve`'s flags, which win over the config file and the environment. */
export interface ServeFlags {
  config?: string;
  port?: number;
  database?: string;
}

/** What to do about a start that failed, when there is something to say: a port that another process holds. */
function startHint(error: unknown): string {
  const { code, port } = error as { code?: unknown; port?: unknown };
  if (code !== 'EADDRINUSE') return '';
  const which = typeof port === 'number' && port > 0 ? `port ${port}` : 'the port';
  return `; another process listens on ${which}: stop it, or choose another port with --port <n> (or PORT, or "port" in the config)`;
}

/**
 * Runs Herald from `herald.config.{ts,mts,js,mjs,json}` (or the environment), with the consumer portal at `/portal`,
 * until SIGTERM or SIGINT, then stops gracefully and exits (`stopOnSignals`). Logs are pino's JSON lines on stdout, among
 * them the generated admin key, once, at warn level.
 */
export async function serve(flags: ServeFlags): Promise<never> {
  const { file, options } = await loadServeConfig(process.cwd(), flags.config);
  const herald = createHerald({
    ...options,
    ...(flags.port !== undefined ? { port: flags.port } : {}),
    ...(flags.database !== undefined ? { database: flags.database } : {}),
  });
  // From the start, so that a signal while it starts stops it too.
  const stopHandlingSignals = stopOnSignals(() => herald.close(), herald.logger);
  let url: string;
  try {
    await herald.ready;
    // The consumer portal, where the links of `POST /v1/portal-sessions` lead (built when packed; in Herald's repository, by `pnpm build`).
    const app = express().disable('x-powered-by');
    if (existsSync(portalAppDirectory)) app.use('/portal', portal());
    app.use(herald.app);
    ({ url } = await herald.listen({ handler: app, handleSignals: false }));
  } catch (error) {
    stopHandlingSignals();
    await herald.close().catch(() => {});
    throw new CliError('start-failed', `Herald could not start: ${oneLine(error)}${startHint(error)}`, 503);
  }
  herald.logger.info(
    { url, config: file ?? null, transports: options.transports.map((transport) => transport.name), eventTypes: herald.catalog.list().length },
    'Herald is listening',
  );
  // Until a signal: stopOnSignals ends the process.
  return new Promise<never>(() => {});
}
