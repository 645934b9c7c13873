import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@herald/testkit';

/** The published command (`bin/herald.js`, which runs `dist/main.js`): the tests' global setup builds it. */
const bin = fileURLToPath(new URL('../bin/herald.js', import.meta.url));

export interface CliOptions {
  /**
   * Added to this process's environment, without its colour settings, nor the NODE_PATH that pnpm's bin shim gave
   * vitest: every package of the workspace, which `herald serve` would take for packages of the project's own.
   */
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** A running `herald` process and what it printed so far. */
export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits until stdout or stderr matches, and returns the match; fails early when the process exits. */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr', timeout?: number): Promise<RegExpMatchArray>;
}

const running = new Set<ChildProcess>();

/** Kills every process started by {@link startCli} that still runs (for afterEach). */
export function killAll(): void {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  running.clear();
}

/** Starts `herald ...args`, as built. */
export function startCli(args: string[], options: CliOptions = {}): CliProcess {
  const { FORCE_COLOR: _force, NO_COLOR: _no, NODE_PATH: _path, ...env } = process.env;
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // `close`, not `exit`: the last of its output may still be in the pipe when the process exits.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async waitFor(pattern, stream, timeout = 30_000) {
      const text = () => (stream === 'stdout' ? stdout : stream === 'stderr' ? stderr : `${stdout}\n${stderr}`);
      await waitFor(() => pattern.test(text()) || child.exitCode !== null, `${pattern} in the output of herald ${args.join(' ')}`, timeout);
      const match = text().match(pattern);
      if (!match) throw new Error(`herald ${args.join(' ')} exited (${child.exitCode}) without printing ${pattern}:\n${stdout}\n${stderr}`);
      return match;
    },
  };
}

/** Runs `herald ...args` to its end. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = startCli(args, options);
  const { code } = await cli.exited;
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

/** A port nothing listens on: one the system just handed out and took back. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Each line of `text` (a `--json` output, pino's logs), parsed. */
export function jsonLines<T = Record<string, unknown>>(text: string): T[] {
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as T);
}
