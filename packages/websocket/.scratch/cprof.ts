import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { defineEventType } from '@herald/core';
import { createHerald } from '@herald/server';
import { WebSocket } from 'ws';
import { z } from 'zod';
import { websocket } from '../src/index.js';
import { HeraldSocket } from '../../client/src/herald-socket.js';
const N = 1000, E = 300;
if (process.argv[2] === 'client') {
  const url = process.argv[3]!, key = process.argv[4]!;
  let total = 0;
  for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: 100 }, () => new Promise<void>((resolve) => {
    const s = new HeraldSocket({ url, token: key, WebSocket });
    s.on('subscribed', () => resolve());
    s.subscribe(['bench.*'], () => { total++; if (total === N * E) done(); });
  })));
  const session = new Session(); session.connect();
  await session.post('Profiler.enable'); await session.post('Profiler.start');
  let c0 = process.cpuUsage();
  async function done() { const c = process.cpuUsage(c0); const { profile } = await session.post('Profiler.stop'); writeFileSync('/tmp/client.cpuprofile', JSON.stringify(profile)); console.log('client cpu per delivery', ((c.user + c.system) / (N * E)).toFixed(2)); process.send!('done'); }
  process.send!('ready');
} else {
  const h = createHerald({ database: '/tmp/prof-herald.db', logLevel: 'silent', env: {}, adminKey: 'adminkey', eventTypes: [defineEventType('bench.event', z.object({ n: z.number(), pad: z.string() }))], transports: [websocket({ maxConnectionsPerKey: 1e6 })] });
  const port = (await h.listen({ port: 0, host: '127.0.0.1', handleSignals: false })).port;
  const r = await fetch(`http://127.0.0.1:${port}/v1/keys`, { method: 'POST', headers: { authorization: 'Bearer adminkey', 'content-type': 'application/json' }, body: JSON.stringify({ role: 'consumer', consumer: 'b' }) });
  const key = ((await r.json()) as any).key;
  const child = fork(fileURLToPath(import.meta.url), ['client', `ws://127.0.0.1:${port}/v1/ws`, key]);
  await new Promise((r) => child.once('message', r));
  const done = new Promise((r) => child.once('message', r));
  await Promise.all(Array.from({ length: E }, (_, n) => h.publish({ type: 'bench.event', data: { n, pad: 'x'.repeat(60) } })));
  await done;
  child.kill(); await h.close(); process.exit(0);
}
