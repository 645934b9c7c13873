import { sse } from '@herald/sse';
import { startTestApp, type TestApp } from '@herald/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, killAll, runCli, startCli } from './cli-process.test-support.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp([sse()]);
});
afterAll(async () => {
  killAll();
  await app.close();
});

async function publish(type: string, n: number): Promise<void> {
  expect((await app.api('POST', '/v1/events', { type, data: { n } })).status).toBe(202);
}

describe('herald tail', () => {
  it('prints the events after --after, then the live ones, of the types asked for; Ctrl-C ends it with 0', async () => {
    await publish('order.created', 1);
    await publish('invoice.paid', 2);
    await publish('order.shipped', 3);
    const tail = startCli(['tail', '--types', 'order.*', '--after', '1', '--json', '--url', app.baseUrl, '--key', app.adminKey]);
    await tail.waitFor(/"seq":3/, 'stdout');
    await publish('order.created', 4);
    await publish('invoice.paid', 5);
    await publish('order.created', 6);
    await tail.waitFor(/"seq":6/, 'stdout');
    tail.child.kill('SIGINT');
    expect((await tail.exited).code).toBe(0);
    const events = jsonLines<{ seq: number; type: string; data: unknown }>(tail.stdout());
    expect(events.map(({ seq, type, data }) => ({ seq, type, data }))).toEqual([
      { seq: 3, type: 'order.shipped', data: { n: 3 } },
      { seq: 4, type: 'order.created', data: { n: 4 } },
      { seq: 6, type: 'order.created', data: { n: 6 } },
    ]);
    expect(tail.stderr()).toBe(`Tailing order.* on ${app.baseUrl} (Ctrl-C to stop)\n`);
  });

  it('reports a pattern that matches no event type in one line, with exit code 1', async () => {
    expect(await runCli(['tail', '--types', 'ordr.*', '--url', app.baseUrl, '--key', app.adminKey])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'herald: ordr.* matches no event type in the catalog (422)\n',
    });
  });
});
