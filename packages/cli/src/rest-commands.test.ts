import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { publishNumbered, startTestApp, type TestApp } from '@herald/testkit';
import { webhook } from '@herald/webhook';
import { websocket } from '@herald/websocket';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, killAll, runCli } from './cli-process.test-support.js';

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

  it("lists every page of the subscriptions, filtered as asked: an admin's list of every consumer's is longer than a page", async () => {
    // A page is as long as a consumer's subscriptions may be: two here.
    const paged = await startTestApp([websocket()], { maxSubscriptions: 2 });
    try {
      const made: string[] = [];
      for (const consumer of ['acme', 'globex', 'initech']) {
        for (const types of [['order.*'], ['invoice.paid']]) {
          const { status, body } = await paged.api('POST', '/v1/subscriptions', { consumer, transport: 'websocket', types });
          expect(status).toBe(201);
          made.push(body.id as string);
        }
      }
      await paged.api('PATCH', `/v1/subscriptions/${made[5]}`, { status: 'paused' });
      const admin = { HERALD_URL: paged.baseUrl, HERALD_KEY: paged.adminKey };
      const ids = async (args: string[]) => {
        const listed = await runCli(['subscriptions', 'list', ...args], { env: admin });
        expect(listed).toMatchObject({ code: 0, stderr: '' });
        return (JSON.parse(listed.stdout) as { data: { id: string }[] }).data.map((item) => item.id);
      };
      const [all, paused, globex] = await Promise.all([ids([]), ids(['--status', 'paused']), ids(['--consumer', 'globex'])]);
      expect(all).toEqual([...made].sort());
      expect(paused).toEqual([made[5]]);
      expect(globex).toEqual(made.slice(2, 4).sort());
      const refused = await runCli(['subscriptions', 'list', '--status', 'sleeping'], { env: admin });
      expect(refused).toMatchObject({ code: 1, stdout: '', stderr: expect.stringMatching(/^herald: [^\n]*status[^\n]* \(422\)\n$/) });
    } finally {
      await paged.close();
    }
  });

  it('names a key with --name, and lists it with its name and the admin key that made it', async () => {
    const admin = { HERALD_URL: app.baseUrl, HERALD_KEY: app.adminKey };
    const created = await runCli(['keys', 'create', '--role', 'consumer', '--consumer', 'acme', '--name', 'Billing sync'], { env: admin });
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const made = JSON.parse(created.stdout) as { id: string; key: string };
    expect(made).toMatchObject({ name: 'Billing sync', createdBy: 'key_admin' });

    const list = await runCli(['keys', 'list'], { env: admin });
    const { key: _key, ...record } = made;
    expect((JSON.parse(list.stdout) as { data: { id: string }[] }).data.find((key) => key.id === made.id)).toEqual(record);
    const blank = await runCli(['keys', 'create', '--role', 'admin', '--name', ' '], { env: admin });
    expect(blank).toEqual({ code: 1, stdout: '', stderr: expect.stringMatching(/^herald: [^\n]*name[^\n]* \(422\)\n$/) });
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

  it('revokes a key, says that a key revoked already is, with exit code 0 as for the first revoke, and refuses an unknown key', async () => {
    const admin = { HERALD_URL: app.baseUrl, HERALD_KEY: app.adminKey };
    const { body: made } = await app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'globex' });
    const revoked = await runCli(['keys', 'revoke', made.id], { env: admin });
    expect(revoked).toEqual({ code: 0, stdout: '', stderr: `Revoked ${made.id}\n` });

    const { revokedAt } = (await app.api('GET', '/v1/keys')).body.data.find((key: { id: string }) => key.id === made.id);
    const [again, unknown] = await Promise.all([runCli(['keys', 'revoke', made.id], { env: admin }), runCli(['keys', 'revoke', 'key_0123456789abcdef0123'], { env: admin })]);
    expect(again).toEqual({ code: 0, stdout: '', stderr: `${made.id} was already revoked (at ${revokedAt})\n` });
    expect(unknown).toEqual({ code: 1, stdout: '', stderr: 'herald: Key key_0123456789abcdef0123 was not found (404)\n' });
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

  it("says how to follow or cancel a replay that still runs, in the command's words, and that nothing comes after a seq at or past the log's end", async () => {
    const hooks = await startTestApp([webhook({ pollInterval: 50 })], { env: { HERALD_ALLOW_PRIVATE: '1' } });
    try {
      await publishNumbered(hooks, 1_200);
      // An endpoint that refuses every connection: the replay's first batches never leave the outbox, so it runs until cancelled.
      const url = `http://127.0.0.1:${await closedPort()}/hook`;
      const { body: subscription } = await hooks.api('POST', '/v1/subscriptions', { consumer: 'acme', transport: 'webhook', types: ['order.*'], config: { url } });
      const running = await hooks.api('POST', `/v1/subscriptions/${subscription.id}/replay`, { after: 0 });
      expect(running).toMatchObject({ status: 202, body: { status: 'running' } });
      const admin = { HERALD_URL: hooks.baseUrl, HERALD_KEY: hooks.adminKey };
      const replay = (...flags: string[]) => runCli(['subscriptions', 'replay', subscription.id, ...flags], { env: admin });

      const command = `herald subscriptions replay ${subscription.id}`;
      expect(await replay('--after', '0')).toEqual({
        code: 1,
        stdout: '',
        stderr: expect.stringMatching(
          new RegExp(`^herald: replay ${running.body.id} of ${subscription.id} is still running \\(at #\\d+ of #1200\\): follow it with \`${command} --status --wait\`, or cancel it with \`${command} --cancel\` \\(409\\)\\n$`),
        ),
      });
      const cancelled = await replay('--cancel');
      expect(cancelled).toMatchObject({ code: 0, stderr: '' });
      expect(JSON.parse(cancelled.stdout)).toMatchObject({ id: running.body.id, status: 'cancelled' });

      const [atTheEnd, pastTheEnd, fromTheFuture] = await Promise.all([replay('--after', '1200'), replay('--after', '5000', '--wait'), replay('--since', '2999-01-01T00:00:00Z')]);
      expect(JSON.parse(pastTheEnd.stdout)).toMatchObject({ status: 'completed', after: 5000, until: 1200, replayed: 0 });
      const nothing = (result: typeof atTheEnd, start: string) => ({
        code: 0,
        stdout: result.stdout,
        stderr: `replay ${JSON.parse(result.stdout).id}: nothing to replay: ${start} (the log ends at #1200)\n`,
      });
      expect(atTheEnd).toEqual(nothing(atTheEnd, 'there is no event after #1200'));
      expect(pastTheEnd).toEqual(nothing(pastTheEnd, 'there is no event after #5000'));
      expect(fromTheFuture).toEqual(nothing(fromTheFuture, 'no event was published at or after 2999-01-01T00:00:00.000Z'));

      // Events after its start, none of them of its types.
      const { body: invoices } = await hooks.api('POST', '/v1/subscriptions', { consumer: 'acme', transport: 'webhook', types: ['invoice.*'], config: { url } });
      const unmatched = await runCli(['subscriptions', 'replay', invoices.id, '--after', '0', '--wait'], { env: admin });
      expect(JSON.parse(unmatched.stdout)).toMatchObject({ status: 'completed', after: 0, until: 1200, replayed: 0 });
      expect(unmatched.code).toBe(0);
      // Under the lines --wait printed while it ran.
      expect(unmatched.stderr).toMatch(
        new RegExp(`\\nreplay ${JSON.parse(unmatched.stdout).id}: nothing to replay: no event from #1 to #1200 is of the subscription's types and passes its filter\\n$`),
      );
    } finally {
      await hooks.close();
    }
  }, 60_000);
});
