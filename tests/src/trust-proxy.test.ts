import { memoryTransport, startTestApp, type TestApp } from '@herald/testkit';
import { websocket } from '@herald/websocket';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';

/** The server behind a proxy on loopback, as this test's requests come from it; 3 failed authentications per address. */
async function start(options: Parameters<typeof startTestApp>[1] = {}): Promise<TestApp> {
  const app = await startTestApp([memoryTransport(), websocket()], { authFailureLimit: { requests: 3, window: 60 }, ...options });
  onTestFinished(() => app.close());
  return app;
}

const wrongKey = `hk_0123456789abcdef0123_${'0'.repeat(64)}`;

/** A REST request as the proxy forwards it, with the `X-Forwarded-For` it sets. */
async function forwarded(app: TestApp, forwardedFor: string, key: string): Promise<number> {
  const response = await fetch(`${app.baseUrl}/v1/subscriptions`, { headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': forwardedFor } });
  await response.body?.cancel();
  return response.status;
}

/** A WebSocket upgrade as the proxy forwards it: opened, or the status it was refused with. */
function forwardedUpgrade(app: TestApp, forwardedFor: string, key: string): Promise<'open' | number> {
  const socket = new WebSocket(`${app.baseUrl.replace('http', 'ws')}/v1/ws`, 'herald.v1', {
    headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': forwardedFor },
  });
  return new Promise((resolve, reject) => {
    socket.on('open', () => {
      socket.close();
      resolve('open');
    });
    socket.on('unexpected-response', (_request, response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    socket.on('error', reject);
  });
}

/** Three failed authentications from `client`, through the proxy. */
async function failThrice(app: TestApp, client: string): Promise<void> {
  for (let n = 0; n < 3; n++) expect(await forwarded(app, client, wrongKey)).toBe(401);
}

const attacker = '203.0.113.5';
const customer = '198.51.100.7';

describe('behind a reverse proxy (trustProxy, HERALD_TRUST_PROXY)', () => {
  it('counts each client by the address its trusted proxy forwarded, on REST and WebSocket upgrades', async () => {
    const app = await start({ trustProxy: 'loopback' });
    const key = await app.consumerKey('acme');
    await failThrice(app, attacker);
    expect(await forwarded(app, attacker, key)).toBe(429);
    expect(await forwardedUpgrade(app, attacker, key)).toBe(429);
    // Another client behind the same proxy is not locked out by the first one's failures.
    expect(await forwarded(app, customer, key)).toBe(200);
    expect(await forwardedUpgrade(app, customer, key)).toBe('open');
  });

  it('without it, believes no X-Forwarded-For: behind a proxy every client shares its address', async () => {
    const app = await start();
    const key = await app.consumerKey('acme');
    await failThrice(app, attacker);
    expect(await forwarded(app, customer, key)).toBe(429);
    expect(await forwardedUpgrade(app, customer, key)).toBe(429);
  });

  it('believes only the proxies it names: a client that is not one cannot choose its address', async () => {
    // The proxy is elsewhere; these requests come straight from loopback, with an X-Forwarded-For of their own.
    const app = await start({ env: { HERALD_TRUST_PROXY: '10.0.0.0/8, fd00::/8' } });
    const key = await app.consumerKey('acme');
    await failThrice(app, attacker);
    expect(await forwarded(app, customer, key)).toBe(429);
  });

  it('with a number of proxies, takes the address the last one saw, whatever a client put before it', async () => {
    const app = await start({ env: { HERALD_TRUST_PROXY: '1' } });
    const key = await app.consumerKey('acme');
    // The proxy appends the address it saw to what the client sent.
    for (const spoofed of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) expect(await forwarded(app, `${spoofed}, ${attacker}`, wrongKey)).toBe(401);
    expect(await forwarded(app, `${customer}, ${attacker}`, key)).toBe(429);
    expect(await forwarded(app, customer, key)).toBe(200);
  });

  it('links a portal session by the scheme and host a trusted proxy forwarded', async () => {
    const linkOf = async (app: TestApp) => {
      const response = await fetch(`${app.baseUrl}/v1/portal-sessions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${app.adminKey}`,
          'content-type': 'application/json',
          'x-forwarded-proto': 'https',
          'x-forwarded-host': 'api.example.com',
        },
        body: JSON.stringify({ consumer: 'acme' }),
      });
      return ((await response.json()) as { url: string }).url;
    };
    const behindProxy = await start({ trustProxy: ['loopback'] });
    expect(await linkOf(behindProxy)).toMatch(/^https:\/\/api\.example\.com\/portal#token=hp_/);
    const direct = await start();
    expect(await linkOf(direct)).toMatch(new RegExp(`^${direct.baseUrl}/portal#token=hp_`));
  });

  it('refuses a setting that names no proxy, before it starts', async () => {
    for (const value of ['0', 'proxy.example.com', '10.0.0.0/33', ' , ']) {
      await expect(startTestApp([], { env: { HERALD_TRUST_PROXY: value } })).rejects.toThrow(
        /^HERALD_TRUST_PROXY must be a number of proxies \(1 or more\) or addresses and subnets such as loopback, 10\.0\.0\.0\/8: /,
      );
    }
    await expect(startTestApp([], { trustProxy: 0 })).rejects.toThrow(/^trustProxy must be a number of proxies/);
  });
});
