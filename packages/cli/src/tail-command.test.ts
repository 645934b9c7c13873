import { sse } from '@herald/sse';
import { startTestApp, type TestApp, waitFor } from '@herald/testkit';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
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

  it('says which events retention pruned after --after, then prints what the log kept', async () => {
    const pruned = await startTestApp([sse()], { logMaxEvents: 3 });
    onTestFinished(() => pruned.close());
    for (let n = 1; n <= 10; n++) await pruned.herald.publish({ type: 'order.created', data: { n } });
    await waitFor(async () => (await pruned.api('GET', '/v1/events?limit=1')).body.oldest === 8, 'retention to prune #1 to #7');
    const tail = startCli(['tail', '--after', '2', '--json', '--url', pruned.baseUrl, '--key', pruned.adminKey]);
    await tail.waitFor(/"seq":10/, 'stdout');
    tail.child.kill('SIGINT');
    expect((await tail.exited).code).toBe(0);
    expect(jsonLines<{ seq: number }>(tail.stdout()).map((event) => event.seq)).toEqual([8, 9, 10]);
    expect(tail.stderr()).toBe(
      `Tailing ** on ${pruned.baseUrl} (Ctrl-C to stop)\nLost to retention: events #3–#7 were pruned before this stream got them (any a longer retention of their type kept still arrive); going on from #8\n`,
    );
  });

  it('reports a pattern that matches no event type in one line, with exit code 1', async () => {
    expect(await runCli(['tail', '--types', 'ordr.*', '--url', app.baseUrl, '--key', app.adminKey])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'herald: ordr.* matches no event type in the catalog (422)\n',
    });
  });
});
