import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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
      'herald.config.json: broker: expected "memory", a redis:// URL, or a broker such as redisBroker({ url })',
      'herald.config.json: maxConnections: Too small: expected number to be >0',
      'herald.config.json: rateLimit.requests: Too small: expected number to be >=1',
      'herald.config.json: authFailureLimit: expected false or an object',
      'herald.config.json: rateLimitStore: expected "memory", a redis:// URL, or a store such as redisRateLimits({ url })',
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
    for (const transport of ['webhook', 'websocket', 'sse']) {
      const response = await fetch(`${url}/v1/subscriptions`, {
        method: 'POST',
        headers: { authorization: 'Bearer admin-from-env-0123456789abcdef0123', 'content-type': 'application/json' },
        body: JSON.stringify({ transport, types: ['**'], consumer: 'c', config: transport === 'webhook' ? { url: 'https://example.com/hooks' } : {} }),
      });
      expect(response.status, transport).toBe(201);
    }
    expect(`${serve.stdout()}${serve.stderr()}`).not.toMatch(/admin key|hk_/i);
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
  });
});
