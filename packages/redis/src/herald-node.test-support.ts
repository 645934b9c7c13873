/**
 * Herald nodes in processes of their own (herald-node-main.test-support.ts), configured by their environment,
 * for what Node reads only when a process starts, such as `NODE_EXTRA_CA_CERTS`.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { onTestFinished } from 'vitest';
import { type RestClient, restClient } from '../../testkit/src/test-app.js';

const mainScript = fileURLToPath(new URL('./herald-node-main.test-support.ts', import.meta.url));
/** tsx's loader, as the workspace has it: the node is `node --import <loader>`, one process, so SIGTERM reaches the node itself. */
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** A node that started: where it listens, and its REST API. */
export type HeraldNode = RestClient & { baseUrl: string };

/** A node's process, started or not. */
export interface HeraldNodeProcess {
  /** Resolves once the node listens; rejects, with what it printed, when it exits first. */
  started: Promise<HeraldNode>;
  /** Its exit code, once it exited. */
  exited: Promise<number | null>;
  /** The lines of its log (pino's JSON) so far. */
  readonly logs: readonly Record<string, unknown>[];
}

/**
 * Starts a node with `env` on top of this process's environment (undefined removes a variable), logging at
 * warn; stopped with SIGTERM when the test finishes.
 */
export function spawnHeraldNode(env: Record<string, string | undefined>): HeraldNodeProcess {
  const child = spawn(process.execPath, ['--conditions=herald-source', '--import', tsxLoader, mainScript], {
    env: { ...process.env, HERALD_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  onTestFinished(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let pending = '';
  const started = new Promise<HeraldNode>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop() as string;
      for (const line of lines) {
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line) as Record<string, unknown>;
        } catch {
          parsed = { line };
        }
        if (typeof parsed.baseUrl === 'string') resolve({ ...restClient(parsed.baseUrl, parsed.adminKey as string), baseUrl: parsed.baseUrl });
        else logs.push(parsed);
      }
    });
    void exited.then((code) => reject(new Error(`the Herald node exited (${code}) before it listened:\n${logs.map((log) => JSON.stringify(log)).join('\n')}\n${stderr}`)));
  });
  // Whoever expects a node to fail waits for `exited` rather than `started`.
  started.catch(() => {});
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return { started, exited, logs };
}
