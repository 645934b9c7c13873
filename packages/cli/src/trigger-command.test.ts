import type { EventMapOf } from '@herald/core';
import { createHerald, type Herald } from '@herald/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoEventTypes } from '../../../apps/demo/src/event-types.js';
import { closedPort, jsonLines, killAll, runCli } from './cli-process.test-support.js';

const adminKey = 'admin-key-for-trigger-0123456789abcdef';
let herald: Herald<EventMapOf<typeof demoEventTypes>>;
let url: string;
beforeAll(async () => {
  herald = createHerald({ database: ':memory:', adminKey, eventTypes: demoEventTypes, logLevel: 'silent', env: {} });
  url = (await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false })).url;
});
afterAll(async () => {
  killAll();
  await herald.close();
});

const server = () => ['--url', url, '--key', adminKey];

describe('herald trigger', () => {
  it('publishes, for every demo type, examples made from its JSON Schema that pass the type’s own schema', async () => {
    const runs = await Promise.all(demoEventTypes.map(({ name }) => runCli(['trigger', name, '--count', '8', '--json', ...server()])));
    for (const [index, run] of runs.entries()) expect({ type: demoEventTypes[index]?.name, ...run }).toMatchObject({ code: 0, stderr: '' });

    const stored = await herald.store.read({ after: 0, limit: 1000 });
    expect(stored).toHaveLength(demoEventTypes.length * 8);
    for (const { name, schema } of demoEventTypes) {
      const events = stored.filter((event) => event.type === name);
      expect(events, name).toHaveLength(8);
      for (const event of events) expect(schema.safeParse(event.data).error, `${name} ${JSON.stringify(event.data)}`).toBeUndefined();
      // Made up afresh for each event, not one example repeated.
      expect(new Set(events.map((event) => JSON.stringify(event.data))).size, name).toBeGreaterThan(1);
    }
    // Each printed line is what was stored.
    const printed = runs.flatMap((run) => jsonLines<{ id: string; seq: number; type: string; data: unknown }>(run.stdout));
    expect(printed.sort((a, b) => a.seq - b.seq)).toEqual(stored.map(({ id, seq, type, data }) => ({ id, seq, type, data })));
  });

  it('publishes --data as given; text lines on a pipe have no colours, and FORCE_COLOR brings them', async () => {
    const data = { invoiceId: 'inv_1', amount: 12.5 };
    const [plain, coloured] = await Promise.all([
      runCli(['trigger', 'invoice.paid', '--data', JSON.stringify(data), ...server()]),
      runCli(['trigger', 'invoice.paid', '--data', JSON.stringify(data), ...server()], { env: { FORCE_COLOR: '1' } }),
    ]);
    expect(plain).toMatchObject({ code: 0, stderr: '', stdout: expect.stringMatching(/^✔ #\d+ invoice\.paid evt_\w+ \{"invoiceId":"inv_1","amount":12\.5\}\n$/) });
    expect(coloured.code).toBe(0);
    expect(coloured.stdout).toContain('\u001b[');
    const stored = await herald.store.read({ after: 0, limit: 1000, types: ['invoice.paid'] });
    expect(stored.slice(-2).map((event) => event.data)).toEqual([data, data]);
  });

  it('refuses bad JSON in --data, an unknown type, data that fails the schema, a refused key and an unreachable server: one line on stderr, exit code 1', async () => {
    const before = herald.bus.latest;
    const nobody = `http://127.0.0.1:${await closedPort()}`;
    const [badJson, unknown, invalid, refused, unreachable] = await Promise.all([
      runCli(['trigger', 'order.created', '--data', '{"orderId": ', ...server()]),
      runCli(['trigger', 'order.craeted', ...server()]),
      runCli(['trigger', 'order.created', '--data', '{"orderId": 1}', ...server()]),
      runCli(['trigger', 'order.created', '--url', url, '--key', 'hk_wrong']),
      runCli(['trigger', 'order.created', '--url', nobody, '--key', adminKey]),
    ]);
    expect(badJson).toEqual({ code: 1, stdout: '', stderr: expect.stringMatching(/^herald: --data is not JSON: [^\n]+\n$/) });
    expect(unknown).toEqual({
      code: 1,
      stdout: '',
      stderr: 'herald: unknown event type "order.craeted" (the catalog has: invoice.paid, invoice.sent, order.created, order.paid, order.shipped)\n',
    });
    expect(invalid).toEqual({ code: 1, stdout: '', stderr: expect.stringMatching(/^herald: The data does not match the schema of "order\.created": data\.orderId: [^\n]+; data\.total: [^\n]+ \(422\)\n$/) });
    expect(refused).toEqual({ code: 1, stdout: '', stderr: 'herald: the key was refused: The API key is not valid\n' });
    expect(unreachable).toEqual({ code: 1, stdout: '', stderr: `herald: cannot reach Herald at ${nobody}: connection refused\n` });
    expect(herald.bus.latest).toBe(before);
  });
});
