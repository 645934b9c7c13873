import { startTestApp, type TestApp } from '@herald/testkit';
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
