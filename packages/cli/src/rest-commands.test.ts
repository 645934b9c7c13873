import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { publishNumbered, startTestApp, type TestApp } from '@herald/testkit';
import { webhook } from '@herald/webhook';
import { websocket } from '@herald/websocket';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, runCli } from './cli-process.test-support.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp([websocket()]);
});
afterAll(async () => {
  killAll();
  await app.close();
});

describe('herald keys and herald subscriptions', () => {
  it('wrap the REST API for scripts: JSON out, HERALD_URL and HERALD_KEY in', async () => {
    const admin = { HERALD_URL: app.baseUrl, HERALD_KEY: app.adminKey };
    const created = await runCli(['keys', 'create', '--role', 'consumer', '--consumer', 'acme'], { env: admin });
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const { key } = JSON.parse(created.stdout) as { key: string };
    expect(key).toMatch(/^hk_/);

    const consumer = { HERALD_URL: app.baseUrl, HERALD_KEY: key };
    const subscribed = await runCli(['subscriptions', 'create', '--transport', 'websocket', '--types', 'order.*,invoice.paid'], { env: consumer });
    expect(subscribed).toMatchObject({ code: 0, stderr: '' });
    const subscription = JSON.parse(subscribed.stdout) as { id: string; consumer: string; types: string[] };
    expect(subscription).toMatchObject({ consumer: 'acme', types: ['order.*', 'invoice.paid'] });

    const [listed, deleted] = [await runCli(['subscriptions', 'list'], { env: consumer }), await runCli(['subscriptions', 'delete', subscription.id], { env: consumer })];
    expect((JSON.parse(listed.stdout) as { data: { id: string }[] }).data.map((item) => item.id)).toEqual([subscription.id]);
    expect(deleted).toEqual({ code: 0, stdout: '', stderr: `Deleted ${subscription.id}\n` });
    expect((await app.api('GET', '/v1/subscriptions?consumer=acme')).body.data).toEqual([]);
  });

  it('refuses what the API refuses, in one line with exit code 1', async () => {
    const consumerKey = await app.consumerKey('acme');
    const [forbidden, badConfig] = await Promise.all([
      runCli(['keys', 'create', '--role', 'admin', '--url', app.baseUrl, '--key', consumerKey]),
      runCli(['subscriptions', 'create', '--transport', 'websocket', '--types', 'order.*', '--config', '{x', '--url', app.baseUrl, '--key', consumerKey]),
    ]);
    expect(forbidden).toEqual({ code: 1, stdout: '', stderr: expect.stringMatching(/^herald: [^\n]+ \(403\)\n$/) });
    expect(badConfig).toEqual({ code: 1, stdout: '', stderr: expect.stringMatching(/^herald: --config is not JSON: [^\n]+\n$/) });
  });
});

describe('herald subscriptions replay', () => {
  it('starts a replay and follows it to its end with --wait, shows it, and says in one line what it cannot do', async () => {
    const hooks = await startTestApp([webhook({ pollInterval: 50 })], { env: { HERALD_ALLOW_PRIVATE: '1' } });
    const received = new Set<string>();
    const receiver = createServer((request, response) => {
      received.add(String(request.headers['webhook-id']));
      request.resume();
      request.on('end', () => response.end());
    });
    await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
    try {
      const published = await publishNumbered(hooks, 1_200);
      // Made after the events: only the replay sends them.
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const made = await hooks.api('POST', '/v1/subscriptions', { consumer: 'acme', transport: 'webhook', types: ['order.*'], config: { url } });
      expect(made.status).toBe(201);
      const admin = { HERALD_URL: hooks.baseUrl, HERALD_KEY: hooks.adminKey };
      const replay = (...flags: string[]) => runCli(['subscriptions', 'replay', made.body.id, ...flags], { env: admin });

      const waited = await replay('--after', '0', '--wait');
      expect(waited.code, waited.stderr).toBe(0);
      expect(JSON.parse(waited.stdout)).toMatchObject({ subscriptionId: made.body.id, status: 'completed', after: 0, replayed: 1_200 });
      expect(waited.stderr).toMatch(/^replay rpl_\w+: every event up to #\d+ of #\d+ has its delivery \(\d+ made\)$/m);
      await expect.poll(() => received.size, { timeout: 15_000 }).toBe(published.length);
      expect(JSON.parse((await replay('--status')).stdout)).toMatchObject({ id: JSON.parse(waited.stdout).id, status: 'completed' });

      const [nothingRunning, noAction, both, badSince] = await Promise.all([replay('--cancel'), replay(), replay('--after', '0', '--cancel'), replay('--since', 'yesterday')]);
      expect(nothingRunning).toEqual({ code: 1, stdout: '', stderr: expect.stringMatching(/^herald: [^\n]*running replay[^\n]* \(404\)\n$/) });
      expect(noAction).toEqual({ code: 1, stdout: '', stderr: 'herald: say what to do: --after <seq> or --since <time> starts a replay, --status shows it, --cancel cancels it\n' });
      expect(both).toMatchObject({ code: 1, stdout: '', stderr: expect.stringContaining("option '--after <seq>' cannot be used with option '--cancel'") });
      expect(badSince).toMatchObject({ code: 1, stdout: '', stderr: expect.stringMatching(/^herald: [^\n]* \(422\)\n$/) });
    } finally {
      receiver.closeAllConnections();
      await new Promise((done) => receiver.close(done));
      await hooks.close();
    }
  }, 60_000);
});
