import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { idsOf, publish, startTestApp, withTestApp } from './test-app.js';
import type { PushHarness, Receiver, SuiteCase, TransportHarness } from './transport-harness.js';
import { waitFor } from './wait-for.js';

/** The process the kill case runs: this package's source while it runs from its source, else its build. */
const pushNode = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './push-node.ts' : './push-node.js', import.meta.url));

interface PushNode {
  process: ChildProcess;
  /** Publishes `count` more events. */
  publish(count: number): void;
  /** The ids of the events it published, as their publish returned. */
  acked: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

function nodeArguments(push: PushHarness): readonly string[] {
  if (push.nodeArguments) return push.nodeArguments;
  let tsx = 'tsx';
  try {
    tsx = pathToFileURL(createRequire(push.module).resolve('tsx')).href;
  } catch {
    // Resolved by node itself, then.
  }
  return ['--conditions=herald-source', '--import', tsx];
}

/** What to do when the process could not load a package its Node arguments name (tsx, unless `push.nodeArguments` says otherwise). */
function missingLoaderHint(args: readonly string[], stderr: string): string | undefined {
  const missing = /Cannot find package '([^']+)'/.exec(stderr)?.[1];
  if (missing === undefined || !args.includes(missing)) return undefined;
  return `it could not load ${missing} (node ${args.join(' ')}): install it (npm i -D ${missing}) or set push.nodeArguments.`;
}

/** Starts a Herald with the push transport of `push.module` on `database`; resolves once it is ready. */
async function startPushNode(harness: TransportHarness, push: PushHarness, database: string): Promise<PushNode> {
  const module = push.module instanceof URL ? push.module.href : push.module.startsWith('file:') ? push.module : pathToFileURL(push.module).href;
  const args = nodeArguments(push);
  const child = spawn(process.execPath, [...args, pushNode, JSON.stringify({ module, database, env: harness.options?.env ?? {} })], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  let pending = '';
  let ready = false;
  const node: PushNode = {
    process: child,
    publish: (count) => child.stdin?.write(`publish ${count}\n`),
    acked: [],
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    stderr: () => stderr,
  };
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() as string;
    for (const line of lines) {
      if (line === `ready ${child.pid}`) ready = true;
      else if (line.startsWith('acked ')) node.acked.push(line.slice(6));
    }
  });
  await waitFor(() => ready || child.exitCode !== null, 'the Herald process to start', 30_000);
  if (!ready) {
    const hint = missingLoaderHint(args, stderr);
    throw new Error(`the Herald process did not start: ${hint ? `${hint}\n` : ''}${stderr}`);
  }
  return node;
}

const receivedIds = (receiver: Receiver) => new Set(idsOf(receiver.events));

/** A delivery as `GET /v1/subscriptions/:id/deliveries` shows it, what the cases read of it. */
interface DeliveryView {
  eventId: string;
  status: string;
  attemptCount: number;
  attempts: { attempt: number; status: string; startedAt: string; error: string | null; nextAttemptAt: string | null }[];
}

/** The cases every push transport passes: durable delivery, whatever happens to the process or the destination. */
export function pushCases(harness: TransportHarness): SuiteCase[] {
  return [
    {
      name: 'loses nothing when killed with SIGKILL in the middle of delivering: every event published arrives after a restart',
      needs: ['push'],
      // Its waits, the recovery's included (60 s unless the harness says), end before the case does, and say which.
      timeout: 150_000,
      async run() {
        const push = harness.push as PushHarness;
        const dir = mkdtempSync(join(tmpdir(), 'herald-push-'));
        const database = join(dir, 'herald.db');
        const nodes: PushNode[] = [];
        let receiver: Receiver | undefined;
        try {
          // The subscription, made by a Herald on the database that is closed again; the receiver outlives it.
          const app = await startTestApp([harness.transport()], { ...harness.options, database });
          try {
            receiver = await harness.receive(app, { consumer: 'acme', types: ['order.*'] });
          } finally {
            await app.close();
          }
          const target = receiver;
          const fail = target.fail?.bind(target);
          assert.ok(fail, "a push harness's receivers can fail (Receiver.fail)");
          const first = await startPushNode(harness, push, database);
          nodes.push(first);
          first.publish(100);
          await waitFor(() => target.events.length >= 20, 'the first deliveries', 30_000);
          // The destination refuses what it is sent from now on, so that the process dies with deliveries left to
          // make, however fast it is: at least those published now.
          await fail(true);
          first.publish(100);
          await waitFor(() => first.acked.length === 200, 'events published while the destination refuses them', 30_000);
          first.process.kill('SIGKILL');
          assert.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' }, first.stderr());
          const acked = [...first.acked];
          await fail(false);

          const second = await startPushNode(harness, push, database);
          nodes.push(second);
          await waitFor(
            () => {
              const received = receivedIds(target);
              return acked.every((id) => received.has(id));
            },
            'every event published before the kill to arrive after the restart',
            push.recoveryTime ?? 60_000,
          ).catch((error: unknown) => {
            const received = receivedIds(target);
            const missing = acked.filter((id) => !received.has(id));
            throw new Error(`${(error as Error).message}: ${missing.length} of ${acked.length} missing; the restarted process said:\n${second.stderr()}`);
          });
          second.process.kill('SIGTERM');
          assert.deepEqual(await second.exited, { code: 0, signal: null }, `a graceful stop after SIGTERM: ${second.stderr()}`);
        } finally {
          for (const node of nodes) if (node.process.exitCode === null && node.process.signalCode === null) node.process.kill('SIGKILL');
          await receiver?.close();
          rmSync(dir, { recursive: true, force: true });
        }
      },
    },
    {
      name: 'retries a delivery its destination refused once it takes it again, on the schedule, and the attempts API shows each try',
      needs: ['push'],
      run: () =>
        withTestApp(harness, async ({ app, receive }) => {
          const receiver = await receive('acme', ['order.*']);
          assert.ok(receiver.fail, "a push harness's receivers can fail (Receiver.fail)");
          await receiver.fail(true);
          const event = await publish(app, 'order.created', 1);
          const key = await app.consumerKey('acme');
          const deliveries = async () => {
            const { status, body } = await app.api('GET', `/v1/subscriptions/${receiver.subscriptionId}/deliveries`, undefined, key);
            assert.equal(status, 200, `GET /v1/subscriptions/:id/deliveries answered ${status}`);
            return body.data as DeliveryView[];
          };
          await waitFor(async () => (await deliveries())[0]?.attempts.some((attempt) => attempt.status === 'failed') ?? false, 'a failed attempt');
          await receiver.fail(false);
          await waitFor(() => receivedIds(receiver).has(event.id), 'the delivery once the destination takes it again', 30_000);
          await waitFor(async () => (await deliveries())[0]?.status === 'delivered', 'the delivery to be recorded as delivered');

          const [delivery] = await deliveries();
          assert.equal(delivery?.eventId, event.id);
          const attempts = delivery?.attempts ?? [];
          assert.ok(attempts.length >= 2, `${attempts.length} attempts`);
          assert.deepEqual(
            attempts.map((attempt) => attempt.status),
            [...attempts.slice(1).map(() => 'failed'), 'succeeded'],
          );
          assert.equal(delivery?.attemptCount, attempts.length);
          attempts.forEach((attempt, index) => {
            assert.equal(attempt.attempt, index + 1);
            const previous = attempts[index - 1];
            if (previous) {
              assert.ok(previous.error, `attempt ${previous.attempt} says why it failed`);
              assert.ok(Date.parse(attempt.startedAt) >= Date.parse(previous.nextAttemptAt as string), `attempt ${attempt.attempt} was made before it was due`);
            }
          });
          assert.equal(receiver.events.filter((received) => received.id === event.id).length, 1, 'the event arrived once');
        }),
    },
  ];
}
