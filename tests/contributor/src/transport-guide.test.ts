import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Transport } from '@herald/core';
import type { PushOptions } from '@herald/outbox';
import { linger, metricValue, publish, startTestApp, subscribeConsumer, type TestApp, waitFor } from '@herald/testkit';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const here = resolve(import.meta.dirname, '..');
const guide = 'docs/guides/writing-a-transport.md';
const run = promisify(execFile);

/** The code blocks of the guide in `language` (`ts`, `json`). */
const blocksOf = (language: string) =>
  [...readFileSync(join(root, guide), 'utf8').matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].filter(([, found]) => found === language).map(([, , code = '']) => code);

/** Each TypeScript block of the guide, under the file name its first line gives (`// mqtt-transport.ts`), else `block-<n>.ts`. */
function samples(): { file: string; code: string }[] {
  return blocksOf('ts').map((code, index) => ({ file: /^\/\/ ([\w.-]+\.ts)\n/.exec(code)?.[1] ?? `block-${index + 1}.ts`, code }));
}

/** The package.json and tsconfig.json that the guide gives a transport package outside the repository: its JSON blocks. */
function projectFiles(): { file: string; code: string }[] {
  return blocksOf('json').map((code) => ({ file: 'compilerOptions' in JSON.parse(code) ? 'tsconfig.json' : 'package.json', code }));
}

/** Runs tsc on the project `config` of the guide's directory; resolves with what it reported, nothing when the samples compile. */
function compile(config: string): Promise<string> {
  const tsc = join(here, 'node_modules/typescript/bin/tsc');
  return run(process.execPath, [tsc, '-p', join(directory, config)], { cwd: directory, encoding: 'utf8' }).then(
    () => '',
    (error: { stdout: string }) => error.stdout,
  );
}

// In this package, so that the samples import what it depends on (mqtt included), as a transport package would.
const directory = mkdtempSync(join(here, '.tmp-guide-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** Runs one of the guide's test files with vitest, as its author would; resolves with the titles of its tests, every one passed. */
async function runGuideTest(file: string): Promise<string[]> {
  const config = `import { defineProject, mergeConfig } from 'vitest/config';
import shared from ${JSON.stringify(join(root, 'vitest.shared.js'))};
export default mergeConfig(shared, defineProject({ test: { name: 'guide', include: [${JSON.stringify(file)}] } }));
`;
  writeFileSync(join(directory, 'vitest.config.ts'), config);
  const report = join(directory, 'vitest.json');
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST')));
  const vitest = join(here, 'node_modules/vitest/vitest.mjs');
  await run(process.execPath, [vitest, 'run', '--reporter=json', `--outputFile=${report}`], { cwd: directory, env, encoding: 'utf8' }).catch(
    (error: { stdout: string; stderr: string }) => {
      throw new Error(`the guide's ${file} failed:\n${error.stdout}\n${error.stderr}`);
    },
  );
  const { numFailedTests, numPendingTests, testResults } = JSON.parse(readFileSync(report, 'utf8'));
  const results: { title: string; status: string }[] = testResults.flatMap((found: { assertionResults: unknown[] }) => found.assertionResults);
  expect({ numFailedTests, numPendingTests }).toEqual({ numFailedTests: 0, numPendingTests: 0 });
  expect(results.length, 'tests run').toBeGreaterThan(0);
  expect(results.map(({ status }) => status)).toEqual(results.map(() => 'passed'));
  return results.map(({ title }) => title);
}

/** One of the guide's files, imported by this process: its transports, for tests of what the suites do not reach. */
const sample = async <T>(file: string) => (await import(join(directory, file))) as T;

/** A TCP proxy on 127.0.0.1 to the MQTT broker on 127.0.0.1:1883, whose connections a test cuts. */
async function brokerProxy() {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: 1883 });
    for (const [socket, other] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(socket);
      socket.on('error', () => socket.destroy()).on('close', () => {
        sockets.delete(socket);
        other.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  /** Cuts every connection through it; `stop` also stops listening, so that a connection is refused (the broker is down). */
  const cut = async ({ stop = false } = {}) => {
    if (stop && server.listening) server.close();
    for (const socket of sockets) socket.destroy();
    await waitFor(() => sockets.size === 0, 'the connections through the proxy to close');
  };
  return { url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, cut, close: () => cut({ stop: true }) };
}

/** The attempts of the delivery of `eventId` to `subscriptionId`, once it had one, as the admin sees them. */
async function attemptsOf(app: TestApp, subscriptionId: string, eventId: string) {
  type DeliveryView = { eventId: string; attempts: { status: string; error: string | null }[] };
  const delivery = async () => {
    const { body } = await app.api('GET', `/v1/subscriptions/${subscriptionId}/deliveries`);
    return (body.data as DeliveryView[]).find((found) => found.eventId === eventId);
  };
  await waitFor(async () => ((await delivery())?.attempts.length ?? 0) > 0, `the first attempt of ${eventId}`);
  return (await delivery())?.attempts.map(({ status, error }) => ({ status, error }));
}

describe(`${guide} (issue 14)`, () => {
  beforeAll(() => {
    for (const { file, code } of [...samples(), ...projectFiles()]) writeFileSync(join(directory, file), code);
  });

  it('has a sample of each kind of transport and its test, each block a file of its own', () => {
    const files = samples().map(({ file }) => file);
    expect(files).toEqual(
      expect.arrayContaining([
        'mqtt-transport.ts',
        'ndjson-transport.ts',
        'long-poll-transport.ts',
        'mqtt-transport.test.ts',
        'mqtt-node.test-support.ts',
        'ndjson-transport.test.ts',
        'long-poll-transport.test.ts',
      ]),
    );
    expect(new Set(files).size, 'two blocks claim one file').toBe(files.length);
  });

  it('compiles: every TypeScript block type-checks, strict, against the packages of the workspace', async () => {
    // The packages' declarations, built by `^build` (turbo.json), rather than their sources again.
    const references = ['core', 'outbox', 'server', 'testkit'].map((found) => ({ path: join(root, 'packages', found) }));
    const compilerOptions = { noEmit: true, composite: false, declaration: false, declarationMap: false, sourceMap: false };
    const files = samples().map(({ file }) => file);
    writeFileSync(join(directory, 'tsconfig.strict.json'), JSON.stringify({ extends: join(root, 'tsconfig.base.json'), compilerOptions, files, references }));
    expect(await compile('tsconfig.strict.json'), 'the compiler on the guide').toBe('');
  }, 120_000);

  it("compiles as a package outside the repository: an ES module with the guide's package.json and tsconfig.json, against the packages' declarations as packed", async () => {
    expect(projectFiles().map(({ file }) => file)).toEqual(['package.json', 'tsconfig.json']);
    // Without the workspace's `herald-source` condition, the packages resolve to their built declarations (`dist`), as from a tarball.
    const files = samples().map(({ file }) => file);
    // With `exactOptionalPropertyTypes` too, which stricter packages set: Herald's types must take both.
    writeFileSync(join(directory, 'tsconfig.check.json'), JSON.stringify({ extends: './tsconfig.json', compilerOptions: { noEmit: true, exactOptionalPropertyTypes: true }, files }));
    expect(await compile('tsconfig.check.json'), "the compiler on the guide, with the guide's tsconfig.json").toBe('');
  }, 120_000);

  it('has an MQTT transport that passes the transport suite, push cases included, against the broker on 127.0.0.1:1883', async () => {
    const titles = await runGuideTest('mqtt-transport.test.ts');
    expect(titles).toEqual(expect.arrayContaining([expect.stringMatching(/^loses nothing when killed with SIGKILL/), expect.stringMatching(/^retries a delivery/)]));
  }, 240_000);

  it('has an MQTT transport that delivers at its first attempt once its connection dropped, and says why when it cannot connect', async () => {
    const { mqttTransport } = await sample<{ mqttTransport(options: PushOptions & { url: string }): Transport }>('mqtt-transport.ts');
    const proxy = await brokerProxy();
    // A failed attempt is tried again a minute later: the first attempt of each delivery is the one looked at.
    const app = await startTestApp([mqttTransport({ url: proxy.url, pollInterval: 50, timeout: 3_000, retrySchedule: [0, 60] })]);
    const subscriber = await connectAsync('mqtt://127.0.0.1:1883');
    try {
      const topic = `guide-${process.pid}-${Date.now()}`;
      const { id } = await subscribeConsumer(app, 'mqtt', { topic }, { types: ['order.*'] });
      const received: string[] = [];
      subscriber.on('message', (_topic, payload) => received.push((JSON.parse(payload.toString()) as { id: string }).id));
      await subscriber.subscribeAsync(`herald/acme/${topic}`, { qos: 1 });

      const first = await publish(app, 'order.created', 1);
      expect(await attemptsOf(app, id, first.id)).toEqual([{ status: 'succeeded', error: null }]);
      // The connection drops; the broker is there again at once.
      await proxy.cut();
      await linger(300); // for the transport to see its connection closed
      const second = await publish(app, 'order.created', 2);
      expect(await attemptsOf(app, id, second.id), 'the first attempt after the connection dropped').toEqual([{ status: 'succeeded', error: null }]);
      await waitFor(() => received.includes(second.id), 'the event at the subscriber');

      // The broker is down: the attempt says why it could not connect.
      await proxy.cut({ stop: true });
      await linger(300);
      const third = await publish(app, 'order.created', 3);
      expect(await attemptsOf(app, id, third.id)).toEqual([{ status: 'failed', error: expect.stringContaining('ECONNREFUSED') }]);
    } finally {
      await app.close();
      await subscriber.endAsync();
      await proxy.close();
    }
  }, 60_000);

  it('has a long-poll transport whose answer to a poll waiting when the server stops closes its connection: close() is quick', async () => {
    const { longPoll } = await sample<{ longPoll(): Transport }>('long-poll-transport.ts');
    const app = await startTestApp([longPoll()]);
    let closed = false;
    try {
      const { id, key } = await subscribeConsumer(app, 'long-poll', {}, { types: ['order.*'] });
      const answer = fetch(`${app.baseUrl}/v1/long-poll?subscription=${id}&wait=30000`, { headers: { authorization: `Bearer ${key}` } }).then(
        async (response) => ({ status: response.status, connection: response.headers.get('connection'), data: ((await response.json()) as { data: unknown[] }).data }),
      );
      await waitFor(async () => (await metricValue(app, 'herald_connected_clients{transport="long-poll"}')) === 1, 'the poll to wait');
      const started = Date.now();
      await app.close();
      closed = true;
      const took = Date.now() - started;
      expect(took, 'ms that close() took').toBeLessThan(1_000);
      expect(await answer).toEqual({ status: 200, connection: 'close', data: [] });
    } finally {
      if (!closed) await app.close();
    }
  }, 30_000);

  it('has an ndjson streaming transport that passes the transport suite through its connect harness, revocation and limits included', async () => {
    const titles = await runGuideTest('ndjson-transport.test.ts');
    expect(titles).toEqual(expect.arrayContaining([expect.stringMatching(/^ends the connections of a revoked key/), 'delivers exactly the matching events, in seq order']));
  }, 240_000);

  it('has a long-poll transport that passes the transport suite through the pull harness, its stop case included', async () => {
    const titles = await runGuideTest('long-poll-transport.test.ts');
    expect(titles).toEqual(expect.arrayContaining([expect.stringMatching(/^stops gracefully: answers a request waiting/), 'delivers exactly the matching events, in seq order']));
  }, 240_000);
});
