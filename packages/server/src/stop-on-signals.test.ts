import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { silentLogger } from '@herald/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { stopOnSignals } from './stop-on-signals.js';

const stoppingNode = fileURLToPath(new URL('./stop-on-signals-node.test-support.ts', import.meta.url));
/** A node that listens with `handleSignals`. */
const listeningNode = fileURLToPath(new URL('../../testkit/src/herald-node-main.test-support.ts', import.meta.url));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

interface NodeProcess {
  child: ChildProcess;
  stdout(): string;
  /** Once it exited and its output was read to the end. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once its stdout matches; rejects when it exits first. */
  printed(pattern: RegExp): Promise<void>;
}

/** Starts a node's `script` (stop-on-signals-node.test-support.ts unless told) with `env` on top of this process's environment. */
function startNode(env: Record<string, string> = {}, script = stoppingNode): NodeProcess {
  const child = spawn(process.execPath, ['--conditions=herald-source', '--import', tsx, script], {
    env: { ...process.env, HERALD_DATABASE: ':memory:', HERALD_ADMIN_KEY: 'stop-on-signals-test-admin-key-0123456789', HERALD_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  const printed = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!pattern.test(stdout)) return;
        child.stdout?.off('data', check);
        resolve();
      };
      child.stdout?.on('data', check);
      check();
      void exited.then(() => reject(new Error(`the node exited without printing ${pattern}:\n${stdout}\n${stderr}`)));
    });
  return { child, stdout: () => stdout, exited, printed };
}

/** What `promise` resolves to, or `still running` when it takes longer than `ms`. */
const within = <T>(ms: number, promise: Promise<T>) =>
  Promise.race([promise, new Promise<string>((resolve) => setTimeout(() => resolve(`still running after ${ms} ms`), ms).unref())]);

const spanPrinted = /name: 'publish order\.created'/;

describe('stopOnSignals', () => {
  it('on SIGTERM, runs what the app finishes after close(), such as an OpenTelemetry SDK sending its last spans, then exits 0', async () => {
    const node = startNode({ STOP_DELAY: '300' });
    await node.printed(/"baseUrl"/);
    node.child.kill('SIGTERM');
    expect(await node.exited).toEqual({ code: 0, signal: null });
    // The span of the publish, held in the SDK's batch until its shutdown, printed by its console exporter.
    const at = (pattern: RegExp) => node.stdout().search(pattern);
    expect(at(/"msg":"stopping"/)).toBeGreaterThan(-1);
    expect(at(spanPrinted)).toBeGreaterThan(at(/"msg":"stopping"/));
    expect(at(/"msg":"stopped"/)).toBeGreaterThan(at(spanPrinted));
  });

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('ends the process at once on a second signal while it stops: %s exits %i', async (second, code) => {
    const node = startNode({ STOP_DELAY: '600000' });
    await node.printed(/"baseUrl"/);
    node.child.kill('SIGTERM');
    await node.printed(/"msg":"stopping"/);
    node.child.kill(second);
    expect(await within(5_000, node.exited)).toEqual({ code, signal: null });
    expect(node.stdout()).not.toMatch(spanPrinted);
    expect(node.stdout()).not.toContain('"msg":"stopped"');
  });

  it('logs that stopping failed, and why, and exits 1, when what it stops with fails', async () => {
    const node = startNode({ STOP_FAILS: '1' });
    await node.printed(/"baseUrl"/);
    node.child.kill('SIGINT');
    expect(await node.exited).toEqual({ code: 1, signal: null });
    expect(node.stdout()).toMatch(/"level":50,[^\n]*"message":"the exporter is unreachable"[^\n]*"msg":"stopping failed"/);
  });

  it.each([
    ['stopOnSignals', stoppingNode],
    ['listen({ handleSignals })', listeningNode],
  ])('stops, with %s, when the reader of its stdout has gone, as after `| head -1`, although its log lines cannot be written', async (_how, script) => {
    const node = startNode({}, script);
    await node.printed(/"baseUrl"/);
    node.child.stdout?.destroy();
    node.child.kill('SIGTERM');
    expect(await within(10_000, node.exited)).toEqual({ code: 0, signal: null });
  });

  it('removes its handlers when told', () => {
    const before = [process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')];
    const remove = stopOnSignals(async () => {}, silentLogger);
    expect([process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')]).toEqual(before.map((count) => count + 1));
    remove();
    expect([process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')]).toEqual(before);
  });
});
