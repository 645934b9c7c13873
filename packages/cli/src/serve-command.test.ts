import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@herald/testkit';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { WebSocket } from 'ws';
import { tempFolder } from '../../core/src/temp-folder.test-support.js';
import { ownRedis } from '../../redis/src/own-redis.test-support.js';
import { startReceiver, verifiedEvent } from '../../webhook/src/test-receiver.test-support.js';
import { testTls } from '../../webhook/src/test-tls.test-support.js';
import { jsonLines, killAll, runCli, startCli } from './cli-process.test-support.js';

const demoEventTypes = fileURLToPath(new URL('../../../apps/demo/src/event-types.ts', import.meta.url));
const cliIndex = fileURLToPath(new URL('./index.ts', import.meta.url));
const redisIndex = fileURLToPath(new URL('../../redis/src/index.ts', import.meta.url));

/** The packages a project that installed the CLI has: `@herald/cli` (whose `@herald/core` and zod it imports too). */
function installCli(dir: string): void {
  mkdirSync(join(dir, 'node_modules/@herald'), { recursive: true });
  symlinkSync(fileURLToPath(new URL('..', import.meta.url)), join(dir, 'node_modules/@herald/cli'), 'dir');
  symlinkSync(fileURLToPath(new URL('../../core', import.meta.url)), join(dir, 'node_modules/@herald/core'), 'dir');
  symlinkSync(fileURLToPath(new URL('../node_modules/zod', import.meta.url)), join(dir, 'node_modules/zod'), 'dir');
}

/** GET or POST with the admin key; the status and the JSON answer. */
async function adminApi(url: string, key: string, method: 'GET' | 'POST', path: string, body?: unknown) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, body: (await response.json()) as any };
}

afterEach(killAll);

/** A project directory holding `files` (path → content). */
function project(files: Record<string, string>): string {
  const dir = tempFolder();
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

/** A transport package of the project's own, which the CLI has never heard of: it answers GET /v1/echo with its options. */
const echoPackage = {
  'node_modules/@herald/echo/package.json': JSON.stringify({ name: '@herald/echo', type: 'module', exports: { '.': './index.js' } }),
  'node_modules/@herald/echo/index.js': `
    export function echo(options) {
      return {
        name: 'echo',
        async start(context) {
          context.http.route({ method: 'GET', path: '/v1/echo', handle: () => ({ body: options }) });
        },
        async stop() {},
      };
    }`,
};

interface Frame {
  type: string;
  [field: string]: unknown;
}

/** A plain `ws` client speaking herald.v1; resolves once subscribed, and collects the events. */
async function subscribeOverWebSocket(url: string, key: string, types: string[]) {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`, 'herald.v1', { headers: { authorization: `Bearer ${key}` } });
  const frames: Frame[] = [];
  socket.on('message', (data) => frames.push(JSON.parse(String(data)) as Frame));
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  socket.send(JSON.stringify({ type: 'subscribe', id: 'all', types }));
  await waitFor(() => frames.some((frame) => frame.type === 'subscribed'), 'subscribed');
  return { socket, events: () => frames.filter((frame) => frame.type === 'event').map((frame) => frame.event as { type: string; data: unknown }) };
}

async function publish(url: string, key: string, type: string, data: unknown): Promise<number> {
  const response = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type, data }),
  });
  return response.status;
}

describe('herald serve', () => {
  it('runs the config file: zod modules, JSON Schemas and a transport package it was never told about; a REST publish reaches a WebSocket client; SIGTERM stops it', async () => {
    const dir = project({
      'package.json': JSON.stringify({ type: 'module' }),
      'config/schemas/ping.json': JSON.stringify({ type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }),
      'config/herald.config.ts': `
        import { defineConfig } from ${JSON.stringify(cliIndex)};
        export default defineConfig({
          port: 0,
          database: './herald.db',
          logLevel: 'info',
          adminRateLimit: { requests: 500, window: 60 },
          rateLimitStore: 'memory',
          transports: { websocket: {}, echo: { greeting: 'hello from echo' } },
          eventTypes: [
            ${JSON.stringify(demoEventTypes)},
            { name: 'ping.sent', description: 'a ping', schema: './schemas/ping.json' },
            { name: 'note.added', schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } },
          ],
        });`,
      ...echoPackage,
    });
    // Paths in the config are relative to it; the transport package is found from there too (../node_modules).
    const serve = startCli(['serve', '--config', 'config/herald.config.ts'], { cwd: dir, env: { HERALD_ADMIN_KEY: '', PORT: '1' } });
    const url = (await serve.waitFor(/"url":"(http:[^"]+)"/, 'stdout'))[1] as string;
    expect(url).not.toMatch(/:1$/);
    const adminKey = (await serve.waitFor(/"level":40,[^\n]*Generated an admin key[^"\n]*: (hk_\w+)/, 'stdout'))[1] as string;
    // Logged once, by createHerald; not printed again by the command.
    expect(`${serve.stdout()}${serve.stderr()}`.split(adminKey)).toHaveLength(2);
    expect(existsSync(join(dir, 'config/herald.db'))).toBe(true);

    const catalogAnswer = await fetch(`${url}/v1/event-types`, { headers: { authorization: `Bearer ${adminKey}` } });
    expect(catalogAnswer.headers.get('ratelimit-policy')).toBe('"admin";q=500;w=60');
    const catalog = (await catalogAnswer.json()) as { data: { name: string }[] };
    expect(catalog.data.map((type) => type.name)).toEqual(['invoice.paid', 'invoice.sent', 'note.added', 'order.created', 'order.paid', 'order.shipped', 'ping.sent']);
    expect(await (await fetch(`${url}/v1/echo`, { headers: { authorization: `Bearer ${adminKey}` } })).json()).toEqual({ greeting: 'hello from echo' });

    const client = await subscribeOverWebSocket(url, adminKey, ['order.*', 'ping.sent']);
    expect(await publish(url, adminKey, 'order.created', { orderId: 'o-1', total: 42, currency: 'EUR' })).toBe(202);
    expect(await publish(url, adminKey, 'ping.sent', { n: 'not a number' })).toBe(422);
    expect(await publish(url, adminKey, 'ping.sent', { n: 7 })).toBe(202);
    await waitFor(() => client.events().length === 2, 'two events over the WebSocket');
    expect(client.events().map(({ type, data }) => ({ type, data }))).toEqual([
      { type: 'order.created', data: { orderId: 'o-1', total: 42, currency: 'EUR' } },
      { type: 'ping.sent', data: { n: 7 } },
    ]);

    const closed = new Promise<number>((resolve) => client.socket.once('close', (code) => resolve(code)));
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
    expect(await closed).toBe(1001);
    // Logs are pino's JSON lines, to the last one.
    const logs = jsonLines<{ msg: string; time: number }>(serve.stdout());
    expect(logs.map((log) => log.msg)).toEqual(expect.arrayContaining(['Herald is listening', 'stopping']));
    // The last line says it stopped, before the process exits (by pino's time: at exit, pino writes what it holds at once).
    expect(logs.toSorted((a, b) => a.time - b.time).at(-1)?.msg).toBe('stopped');
  });

  it('delivers webhooks over HTTPS to an endpoint whose certificate authority the process trusts, signed', async () => {
    const receiver = await startReceiver(undefined, 0, { tls: true });
    const adminKey = `admin-${'k'.repeat(40)}`;
    const env = { PORT: '0', HERALD_DATABASE: ':memory:', HERALD_ADMIN_KEY: adminKey, HERALD_ALLOW_PRIVATE: '1', NODE_EXTRA_CA_CERTS: testTls.ca };
    const serve = startCli(['serve'], { cwd: tempFolder(), env });
    const url = (await serve.waitFor(/"url":"(http:[^"]+)"/, 'stdout'))[1] as string;
    const api = async (path: string, body: unknown) => {
      const response = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as any };
    };
    expect((await api('/v1/event-types', { name: 'order.created', schema: { type: 'object' } })).status).toBe(201);
    const subscription = await api('/v1/subscriptions', { transport: 'webhook', types: ['order.*'], consumer: 'acme', config: { url: receiver.url } });
    expect(subscription.status).toBe(201);
    expect(receiver.url).toMatch(/^https:\/\/localhost:/);
    expect(await publish(url, adminKey, 'order.created', { orderId: 'o-1' })).toBe(202);

    await waitFor(() => receiver.requests.length > 0, 'the webhook over HTTPS');
    const event = verifiedEvent(subscription.body.config.secret, receiver.requests[0] as (typeof receiver.requests)[number]);
    expect(event).toMatchObject({ type: 'order.created', data: { orderId: 'o-1' } });
  });

  it('takes a broker and a rate-limit store made in a .ts config, as to a Redis that requires a client certificate', async () => {
    // TLS only, from clients with a certificate the test authority signed: no redis:// URL in HERALD_BROKER can say that.
    const redis = await ownRedis({ tls: testTls });
    onTestFinished(redis.kill);
    const dir = project({
      'herald.config.ts': `
        import { readFileSync } from 'node:fs';
        import { defineConfig } from ${JSON.stringify(cliIndex)};
        import { redisBroker, redisRateLimits } from ${JSON.stringify(redisIndex)};
        const tls = { ca: readFileSync(${JSON.stringify(testTls.ca)}), cert: readFileSync(${JSON.stringify(testTls.cert)}), key: readFileSync(${JSON.stringify(testTls.key)}) };
        const url = ${JSON.stringify(redis.url)};
        export default defineConfig({ port: 0, database: ':memory:', broker: redisBroker({ url, tls }), rateLimitStore: redisRateLimits({ url, tls }) });`,
    });
    const serve = startCli(['serve'], { cwd: dir, env: { HERALD_ADMIN_KEY: `admin-${'r'.repeat(40)}` } });
    await serve.waitFor(/"url":"(http:[^"]+)"/, 'stdout');
    // ioredis as @herald/redis has it: the CLI does not depend on it.
    const { Redis } = createRequire(redisIndex)('ioredis') as { Redis: new (url: string, options: object) => { client(command: 'LIST'): Promise<string>; disconnect(): void } };
    const admin = new Redis(redis.url, { tls: { ca: readFileSync(testTls.ca), cert: readFileSync(testTls.cert), key: readFileSync(testTls.key) } });
    onTestFinished(() => void admin.disconnect());
    const names = (await admin.client('LIST')).match(/name=herald-[\w-]+/g)?.sort();
    expect(names).toEqual(['name=herald-publisher', 'name=herald-rate-limits', 'name=herald-subscriber']);
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
  });

  it("serves the consumer portal where a portal session's link leads", async () => {
    const adminKey = `admin-${'p'.repeat(40)}`;
    const serve = startCli(['serve'], { cwd: tempFolder(), env: { PORT: '0', HERALD_DATABASE: ':memory:', HERALD_ADMIN_KEY: adminKey } });
    const url = (await serve.waitFor(/"url":"(http:[^"]+)"/, 'stdout'))[1] as string;
    const session = await fetch(`${url}/v1/portal-sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ consumer: 'acme' }),
    });
    expect(session.status).toBe(201);
    const link = new URL(((await session.json()) as { url: string }).url);
    expect(link.hash).toMatch(/^#token=hp_/);
    const page = await fetch(new URL(link.pathname, url));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Event portal</title>');
    // Nothing in an answer names what serves it.
    expect(page.headers.get('x-powered-by')).toBeNull();
    expect((await fetch(`${url}/v1/stream?types=order.*`)).headers.get('x-powered-by')).toBeNull();
    // Herald's own routes are still answered next to it.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('links the portal by the scheme and host the proxies of its trustProxy forwarded', async () => {
    const adminKey = `admin-${'t'.repeat(40)}`;
    const dir = project({ 'herald.config.json': JSON.stringify({ port: 0, database: ':memory:', adminKey, trustProxy: 'loopback' }) });
    const serve = startCli(['serve'], { cwd: dir });
    const url = (await serve.waitFor(/"url":"(http:[^"]+)"/, 'stdout'))[1] as string;
    const session = await fetch(`${url}/v1/portal-sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'events.example.com' },
      body: JSON.stringify({ consumer: 'acme' }),
    });
    expect(((await session.json()) as { url: string }).url).toMatch(/^https:\/\/events\.example\.com\/portal#token=hp_/);
  });

  it('lists every problem of a config that does not validate, each with the file and the path, and does not start', async () => {
    const dir = project({
      'herald.config.json': JSON.stringify({
        port: 70000,
        databse: './typo.db',
        broker: 'kafka://localhost',
        rateLimit: { requests: 0, window: 60 },
        authFailureLimit: '60/1m',
        rateLimitStore: 'memcached://localhost',
        trustProxy: true,
        maxConnections: 0,
        transports: { websocket: {}, carrierpigeon: {}, 'Bad Name': {}, sse: 5 },
        eventTypes: [{ name: 'Order Created' }, { name: 'ping.sent', schema: './missing.json' }, './missing-module.ts', { name: 'x.y', schema: 5 }],
      }),
    });
    const { code, stdout, stderr } = await runCli(['serve'], { cwd: dir });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines[0]).toBe('herald: herald.config.json is not a valid Herald config (15 problems)');
    expect(lines.slice(1).map((line) => line.trim())).toEqual([
      'herald.config.json: port: Too big: expected number to be <=65535',
      'herald.config.json: broker: expected "memory", a redis:// URL, { "url": "rediss://...", "tls": {...} }, or a broker such as redisBroker({ url })',
      'herald.config.json: maxConnections: Too small: expected number to be >0',
      'herald.config.json: rateLimit.requests: Too small: expected number to be >=1',
      'herald.config.json: authFailureLimit: expected false or an object',
      'herald.config.json: rateLimitStore: expected "memory", a redis:// URL, { "url": "rediss://...", "tls": {...} }, or a store such as redisRateLimits({ url })',
      'herald.config.json: trustProxy: expected a number or a string or an array',
      'herald.config.json: databse: not a field Herald knows',
      expect.stringMatching(/^herald\.config\.json: eventTypes\[0\]\.name: "Order Created" is not a valid event-type name/),
      expect.stringMatching(/^herald\.config\.json: eventTypes\[1\]\.schema: cannot read ".*missing\.json": no such file/),
      expect.stringMatching(/^herald\.config\.json: eventTypes\[2\]: cannot load "\.\/missing-module\.ts": no such file/),
      'herald.config.json: eventTypes[3].schema: expected a string or an object or a zod schema',
      'herald.config.json: transports.carrierpigeon: the package @herald/carrierpigeon is not installed (npm install @herald/carrierpigeon)',
      expect.stringMatching(/^herald\.config\.json: transports\["Bad Name"\]: a transport is a short name like "webhook"/),
      'herald.config.json: transports.sse: expected true or an object',
    ]);
  });

  it('counts the rate limits where the config says: a Redis it cannot reach stops the start, naming it', async () => {
    const dir = project({ 'herald.config.json': JSON.stringify({ port: 0, database: ':memory:', rateLimitStore: 'redis://127.0.0.1:1' }) });
    const { code, stderr } = await runCli(['serve'], { cwd: dir });
    expect(code).toBe(1);
    expect(stderr).toContain('Redis is not reachable at redis://127.0.0.1:1');
  });

  it('runs a herald.config.ts of import and export default in a CommonJS project, a project whose package.json has no type, and an ESM one', async () => {
    const adminKey = `admin-${'t'.repeat(40)}`;
    const started = ['commonjs', undefined, 'module'].map(async (type) => {
      const dir = project({
        // What `npm init -y` writes, `{}`, and what an ESM project has.
        'package.json': JSON.stringify(type === undefined ? {} : { name: 'shop', version: '1.0.0', type }),
        'src/event-types.ts': `
          import { defineEventType } from '@herald/core';
          import { z } from 'zod';
          export const orderCreated = defineEventType('order.created', z.object({ id: z.string() }), { retention: '90d' });
          export const accountUpdated = defineEventType('account.updated', z.object({ id: z.string() }), { compaction: 'subject' });`,
        'herald.config.ts': `
          import { defineConfig, type HeraldConfig } from '@herald/cli';
          import { orderCreated } from './src/event-types';
          const port: HeraldConfig['port'] = 0;
          export default defineConfig({
            port,
            database: ':memory:',
            source: '/shop/' + orderCreated.name,
            eventTypes: ['./src/event-types.ts', { name: 'ping.sent', retention: '1h' }],
          });`,
      });
      installCli(dir);
      const serve = startCli(['serve'], { cwd: dir, env: { HERALD_ADMIN_KEY: adminKey } });
      const url = (await serve.waitFor(/"url":"(http:[^"]+)"/, 'stdout'))[1] as string;
      return { type, serve, url };
    });
    for (const { type, serve, url } of await Promise.all(started)) {
      const catalog = await adminApi(url, adminKey, 'GET', '/v1/event-types');
      expect(catalog.body.data.map(({ name, retention, compaction }: Record<string, unknown>) => ({ name, retention, compaction })), String(type)).toEqual([
        { name: 'account.updated', retention: undefined, compaction: 'subject' },
        { name: 'order.created', retention: '90d', compaction: undefined },
        { name: 'ping.sent', retention: '1h', compaction: undefined },
      ]);
      const published = await adminApi(url, adminKey, 'POST', '/v1/events', { type: 'order.created', data: { id: 'o-1' } });
      expect(published.status).toBe(202);
      const read = await adminApi(url, adminKey, 'GET', '/v1/events?after=0');
      expect(read.body.data[0]).toMatchObject({ type: 'order.created', source: '/shop/order.created' });
      serve.child.kill('SIGTERM');
      expect(await serve.exited).toEqual({ code: 0, signal: null });
    }
  });

  it("answers with its own problem type an error that a project's TypeScript transport throws, though that transport has @herald/core loaded apart", async () => {
    const adminKey = `admin-${'p'.repeat(40)}`;
    const dir = project({
      'package.json': JSON.stringify({ type: 'module' }),
      'teapot-transport.ts': `
        import { ConflictError, defineRoute, type Transport } from '@herald/core';
        export default function teapot(): Transport {
          return {
            name: 'teapot',
            async start(context) {
              context.http.route(defineRoute({ method: 'GET', path: '/v1/teapot', handle: () => { throw new ConflictError('the teapot is taken'); } }));
            },
            async stop() {},
          };
        }`,
      'herald.config.json': JSON.stringify({ port: 0, database: ':memory:', transports: { websocket: {}, './teapot-transport.ts': {} } }),
    });
    installCli(dir);
    const serve = startCli(['serve'], { cwd: dir, env: { HERALD_ADMIN_KEY: adminKey } });
    const url = (await serve.waitFor(/"url":"(http:[^"]+)"/, 'stdout'))[1] as string;
    const answer = await adminApi(url, adminKey, 'GET', '/v1/teapot');
    expect(answer).toEqual({ status: 409, body: { type: 'urn:herald:problem:conflict', title: 'Conflict', status: 409, detail: 'the teapot is taken' } });
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
  });

  it('refuses a herald.config.js of ESM syntax in a CommonJS project, saying to rename it .mjs or to set "type": "module"; as .mjs it runs', async () => {
    const dir = project({
      'package.json': JSON.stringify({ name: 'shop', version: '1.0.0', type: 'commonjs' }),
      'herald.config.js': `export default { port: 0, database: ':memory:' };`,
    });
    const refused = await runCli(['serve'], { cwd: dir });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('herald: herald.config.js is not a valid Herald config (1 problem)\n');
    expect(refused.stderr).toContain(
      `  herald.config.js: cannot load it: Unexpected token 'export': Node runs a .js file of a CommonJS package (${join(dir, 'package.json')} says "type": "commonjs") as CommonJS, without import or export; rename it herald.config.mjs, or set "type": "module" in ${join(dir, 'package.json')}\n`,
    );

    writeFileSync(join(dir, 'herald.config.mjs'), readFileSync(join(dir, 'herald.config.js')));
    const serve = startCli(['serve', '--config', 'herald.config.mjs'], { cwd: dir, env: { HERALD_ADMIN_KEY: `admin-${'m'.repeat(40)}` } });
    await serve.waitFor(/"config":"herald\.config\.mjs"/, 'stdout');
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
  });

  it("runs createHerald's log, portal and subscription options and each type's retention from herald.config.json", async () => {
    const adminKey = `admin-${'j'.repeat(40)}`;
    const dir = project({
      'herald.config.json': JSON.stringify({
        port: 0,
        database: './herald.db',
        adminKey,
        logRetention: '1s',
        logMaxEvents: 3,
        logPartitionSize: 50_000,
        portalUrl: 'https://events.example.com/portal',
        maxSubscriptions: 1,
        eventTypes: [
          { name: 'audit.logged', description: 'kept a year', retention: '365d' },
          { name: 'account.updated', schema: { type: 'object' }, compaction: 'subject' },
          { name: 'ping.sent' },
        ],
      }),
    });
    const serve = startCli(['serve'], { cwd: dir });
    const url = (await serve.waitFor(/"url":"(http:[^"]+)"/, 'stdout'))[1] as string;

    const catalog = await adminApi(url, adminKey, 'GET', '/v1/event-types');
    expect(catalog.body.data.map(({ name, retention, compaction }: Record<string, unknown>) => ({ name, retention, compaction }))).toEqual([
      { name: 'account.updated', retention: undefined, compaction: 'subject' },
      { name: 'audit.logged', retention: '365d', compaction: undefined },
      { name: 'ping.sent', retention: undefined, compaction: undefined },
    ]);
    const session = await adminApi(url, adminKey, 'POST', '/v1/portal-sessions', { consumer: 'acme' });
    expect(session.body.url).toMatch(/^https:\/\/events\.example\.com\/portal#token=hp_/);
    const subscription = { transport: 'websocket', types: ['audit.logged'], consumer: 'acme' };
    expect((await adminApi(url, adminKey, 'POST', '/v1/subscriptions', subscription)).status).toBe(201);
    expect((await adminApi(url, adminKey, 'POST', '/v1/subscriptions', subscription)).status).toBe(409);

    // Four audit events (seq 1 to 4), a ping (5), an audit event (6): the log keeps the newest three (logMaxEvents), and
    // of those not the ping, older than the log's retention of 1 s, but the audit events, which have a year of their own
    // (and the newest event, the head of the log, stays).
    for (const type of ['audit.logged', 'audit.logged', 'audit.logged', 'audit.logged', 'ping.sent', 'audit.logged']) {
      expect((await adminApi(url, adminKey, 'POST', '/v1/events', { type, data: {} })).status).toBe(202);
    }
    const seqs = async () => (await adminApi(url, adminKey, 'GET', '/v1/events?after=0')).body.data.map((event: { seq: number }) => event.seq);
    await waitFor(async () => (await seqs()).join() === '4,6', 'the log pruned to seq 4 and 6', 15_000);
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
  });

  it('refuses log, portal and retention settings that createHerald would refuse, each with its path', async () => {
    const dir = project({
      'herald.config.json': JSON.stringify({
        logRetention: '30 days',
        logMaxEvents: 0,
        logPartitionSize: 10,
        portalUrl: 'https://events.example.com/portal#here',
        maxSubscriptions: -1,
        eventTypes: [{ name: 'audit.logged', retention: '0d', compaction: 'latest' }],
      }),
    });
    const { code, stderr } = await runCli(['serve'], { cwd: dir });
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([
      'herald: herald.config.json is not a valid Herald config (7 problems)',
      '  herald.config.json: maxSubscriptions: Too small: expected number to be >0',
      '  herald.config.json: logRetention: must be a whole number of at least 1 and a unit: s, m, h or d (e.g. 90s, 15m, 12h, 30d)',
      '  herald.config.json: logMaxEvents: Too small: expected number to be >0',
      '  herald.config.json: logPartitionSize: must be a whole number from 1,000 to 100,000,000',
      '  herald.config.json: portalUrl: must be an absolute http(s) URL without a fragment (the token goes there), e.g. https://api.example.com/portal',
      '  herald.config.json: eventTypes[0].retention: must be a whole number of at least 1 and a unit: s, m, h or d (e.g. 90s, 15m, 12h, 30d)',
      '  herald.config.json: eventTypes[0].compaction: must be "subject" (keep the newest event of each subject)',
    ]);
  });

  it('says what to do when the port is taken: --port or PORT', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const { port } = taken.address() as AddressInfo;
    const dir = project({ 'herald.config.json': JSON.stringify({ host: '127.0.0.1', port, database: ':memory:' }) });
    const { code, stdout, stderr } = await runCli(['serve'], { cwd: dir, env: { HERALD_ADMIN_KEY: `admin-${'u'.repeat(40)}` } });
    expect(code).toBe(1);
    expect(stdout).not.toContain('Herald is listening');
    expect(stderr).toBe(
      `herald: Herald could not start: listen EADDRINUSE: address already in use 127.0.0.1:${port}; another process listens on port ${port}: stop it, or choose another port with --port <n> (or PORT, or "port" in the config)\n`,
    );
  });

  it('names every config file it reads in its help: herald.config.{ts,mts,js,mjs,json}', async () => {
    const { code, stdout } = await runCli(['serve', '--help']);
    expect(code).toBe(0);
    // As one line: commander wraps the help to the terminal's width.
    const help = stdout.replace(/\s+/g, ' ');
    expect(help).toContain('run a Herald server from herald.config.{ts,mts,js,mjs,json}, or from the environment');
    expect(help).toContain('--config <file> the config file (default: herald.config.ts, .mts, .js, .mjs or .json in this directory)');
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('stops on %s when the reader of its stdout has gone, as `herald serve | head -1` leaves it', async (signal) => {
    const serve = startCli(['serve'], { cwd: tempFolder(), env: { PORT: '0', HERALD_DATABASE: ':memory:', HERALD_ADMIN_KEY: `admin-${'h'.repeat(40)}` } });
    await serve.waitFor(/Herald is listening/, 'stdout');
    serve.child.stdout?.destroy();
    serve.child.kill(signal);
    const stillRunning = new Promise((resolve) => setTimeout(() => resolve('still running 10 s after the signal'), 10_000).unref());
    expect(await Promise.race([serve.exited, stillRunning])).toEqual({ code: 0, signal: null });
  });

  it('without a config file, runs from the environment with the default transports; --port and --database win over it', async () => {
    const dir = project({});
    const serve = startCli(['serve', '--port', '0', '--database', './flag.db'], {
      cwd: dir,
      env: { PORT: '1', HERALD_DATABASE: './env.db', HERALD_ADMIN_KEY: 'admin-from-env-0123456789abcdef0123' },
    });
    const url = (await serve.waitFor(/"url":"(http:[^"]+)"/, 'stdout'))[1] as string;
    expect(url).not.toMatch(/:1$/);
    expect(existsSync(join(dir, 'flag.db'))).toBe(true);
    expect(existsSync(join(dir, 'env.db'))).toBe(false);
    const post = (path: string, body: unknown) =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: { authorization: 'Bearer admin-from-env-0123456789abcdef0123', 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('/v1/event-types', { name: 'order.created' })).status).toBe(201);
    for (const transport of ['webhook', 'websocket', 'sse']) {
      const response = await post('/v1/subscriptions', { transport, types: ['**'], consumer: 'c', config: transport === 'webhook' ? { url: 'https://example.com/hooks' } : {} });
      expect(response.status, transport).toBe(201);
    }
    expect(`${serve.stdout()}${serve.stderr()}`).not.toMatch(/admin key|hk_/i);
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
  });
});
