/**
 * Herald nodes in processes of their own, for what Node reads only when a process starts, such as
 * `NODE_EXTRA_CA_CERTS`. A node's script prints `{"baseUrl":...,"adminKey":...}` as one line once it listens
 * (its logs, pino's JSON lines, may go to stdout too), closes on SIGTERM, and exits when it cannot start.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { onTestFinished } from 'vitest';
import { type RestClient, restClient } from './test-app.js';

/** A node's script configured by its environment as the server app is, with the SSE transport (herald-node-main.test-support.ts). */
export const envConfiguredNode = new URL('./herald-node-main.test-support.ts', import.meta.url);

/** A node that started: where it listens, and its REST API. */
export type HeraldNode = RestClient & { baseUrl: string };

/** A node's process, started or not. */
export interface HeraldNodeProcess {
  /** Resolves once the node listens; rejects, with what it printed, when it exits first. */
  started: Promise<HeraldNode>;
  /** Its exit code, once it exited and its output was read to the end. */
  exited: Promise<number | null>;
  /** The lines of its log (pino's JSON) so far. */
  readonly logs: readonly Record<string, unknown>[];
  /** Sends it `signal`. */
  kill(signal: NodeJS.Signals): void;
}

/**
 * Runs `script` (TypeScript, through tsx as the package of `script` has it) with `args`, and `env` on top of this
 * process's environment (undefined removes a variable); stopped with SIGTERM when the test finishes. `openFiles`
 * sets the process's open-files limit (`prlimit --nofile`).
 */
export function spawnHeraldNode(
  script: URL,
  args: readonly string[],
  env: Record<string, string | undefined>,
  { openFiles }: { openFiles?: number } = {},
): HeraldNodeProcess {
  // `node --import <loader>`: one process, so that SIGTERM reaches the node itself (prlimit runs it in its own place).
  const tsx = pathToFileURL(createRequire(script).resolve('tsx')).href;
  const node = [process.execPath, '--conditions=herald-source', '--import', tsx, fileURLToPath(script), ...args];
  const [command, ...commandArgs] = openFiles === undefined ? node : ['prlimit', `--nofile=${openFiles}`, ...node];
  const child = spawn(command as string, commandArgs, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // 'close' rather than 'exit': its last lines of output are read by then.
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
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
  return { started, exited, logs, kill: (signal) => void child.kill(signal) };
}
