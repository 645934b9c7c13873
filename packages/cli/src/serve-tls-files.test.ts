import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@herald/testkit';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { startAmqpsProxy, startConsumer } from '../../amqp/src/amqp-broker.test-support.js';
import { ownPostgresWithTls } from '../../core/src/sql/own-postgres.test-support.js';
import { tempFolder } from '../../core/src/temp-folder.test-support.js';
import { ownRedis } from '../../redis/src/own-redis.test-support.js';
import { testTls } from '../../webhook/src/test-tls.test-support.js';
import { jsonLines, killAll, runCli, startCli } from './cli-process.test-support.js';

afterEach(killAll);

const redisIndex = fileURLToPath(new URL('../../redis/src/index.ts', import.meta.url));
const adminKey = `admin-${'f'.repeat(40)}`;

/**
 * A project whose config is `config/herald.config.json`, beside a copy of the test authority's files in `config/tls/`
 * (`ca.pem`, `localhost.pem`, `localhost-key.pem`), with `@herald/<name>` installed for each of `packages`. The command
 * runs from the project, one folder above the config: a path relative to the config is not one relative to the working directory.
 */
function project(config: Record<string, unknown>, packages: string[] = []): { dir: string; tls: string } {
  const dir = tempFolder();
  const tls = join(dir, 'config/tls');
  mkdirSync(tls, { recursive: true });
  for (const file of Object.values(testTls)) copyFileSync(file, join(tls, file.split('/').at(-1) as string));
  writeFileSync(join(dir, 'config/herald.config.json'), JSON.stringify({ port: 0, adminKey, ...config }));
  mkdirSync(join(dir, 'node_modules/@herald'), { recursive: true });
  for (const name of packages) symlinkSync(fileURLToPath(new URL(`../../${name}`, import.meta.url)), join(dir, 'node_modules/@herald', name), 'dir');
  return { dir, tls };
}

/** The test authority, the certificate it signed for localhost and its key, as `{ file }` members relative to the config. */
const tlsFiles = { ca: { file: 'tls/ca.pem' }, cert: { file: 'tls/localhost.pem' }, key: { file: 'tls/localhost-key.pem' } };

const serve = (dir: string) => startCli(['serve', '--config', 'config/herald.config.json'], { cwd: dir });

describe('herald serve: TLS files of a JSON config', () => {
  it('takes a broker and a rate-limit store as { url, tls } with the files of a Redis that requires a client certificate, and logs their connections', async () => {
    // TLS only, from clients with a certificate the test authority signed.
    const redis = await ownRedis({ tls: testTls });
    onTestFinished(redis.kill);
    const redisConfig = { url: redis.url, tls: tlsFiles };
    const { dir } = project({ database: ':memory:', broker: redisConfig, rateLimitStore: redisConfig }, ['redis']);
    const herald = serve(dir);
    await herald.waitFor(/"url":"(http:[^"]+)"/, 'stdout');

    // ioredis as @herald/redis has it: the CLI does not depend on it.
    const { Redis } = createRequire(redisIndex)('ioredis') as { Redis: new (url: string, options: object) => { client(command: 'LIST'): Promise<string>; disconnect(): void } };
    const admin = new Redis(redis.url, { tls: { ca: readFileSync(testTls.ca), cert: readFileSync(testTls.cert), key: readFileSync(testTls.key) } });
    onTestFinished(() => void admin.disconnect());
    const names = (await admin.client('LIST')).match(/name=herald-[\w-]+/g)?.sort();
    expect(names).toEqual(['name=herald-publisher', 'name=herald-rate-limits', 'name=herald-subscriber']);

    // Made by createHerald of the `{ url, tls }` the command read, they log to its logger as the broker of a URL does.
    admin.disconnect();
    await redis.kill();
    const lost = () => jsonLines<{ component?: string; role?: string; msg: string }>(herald.stdout()).filter((log) => log.msg === 'the connection to Redis failed; reconnecting');
    await waitFor(() => lost().length === 3, 'the three connections said lost');
    expect(lost().map(({ component, role }) => `${component} ${role}`).sort()).toEqual(['broker publisher', 'broker subscriber', 'rate-limits rate-limits']);
    herald.child.kill('SIGTERM');
    expect((await herald.exited).code).toBe(0);
  });

  it('gives a transport its tls files as PEM text: the AMQP transport publishes over amqps:// to a broker whose certificate the file\'s authority signed', async () => {
    const proxy = await startAmqpsProxy();
    onTestFinished(() => proxy.close());
    const queue = await startConsumer();
    onTestFinished(() => queue.close());
    const { dir } = project({ database: ':memory:', transports: { amqp: { tls: { ca: [{ file: 'tls/ca.pem' }] } } } }, ['amqp']);
    const herald = startCli(['serve', '--config', 'config/herald.config.json'], { cwd: dir, env: { HERALD_ALLOW_PRIVATE: '1' } });
    const url = (await herald.waitFor(/"url":"(http:[^"]+)"/, 'stdout'))[1] as string;
    const api = async (path: string, body: unknown) => {
      const response = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as { id?: string } };
    };
    expect((await api('/v1/event-types', { name: 'order.created', schema: { type: 'object' } })).status).toBe(201);
    expect((await api('/v1/subscriptions', { transport: 'amqp', types: ['order.*'], consumer: 'acme', config: { url: proxy.url, exchange: queue.exchange } })).status).toBe(201);
    const published = await api('/v1/events', { type: 'order.created', data: { orderId: 'o-1' } });
    expect(published.status).toBe(202);
    await waitFor(() => queue.ids().has(published.body.id as string), 'the event, over amqps://');
    // Through the TLS endpoint, which the AMQP connection reached by the name its certificate is for.
    expect(proxy.servernames).toContain('localhost');
  });

  it("reads a postgres:// URL's sslrootcert relative to the config, as every path in it, and connects over TLS", async () => {
    const server = await ownPostgresWithTls();
    onTestFinished(() => server.close());
    const { dir } = project({ database: `postgres://postgres@localhost:${server.port}/postgres?sslmode=verify-full&sslrootcert=tls/ca.pem` });
    const herald = serve(dir);
    // The server lets in TLS connections only.
    await herald.waitFor(/"msg":"Herald is listening"/, 'stdout');
    herald.child.kill('SIGTERM');
    expect((await herald.exited).code).toBe(0);
  }, 60_000);

  it('lists each TLS file that is missing, unreadable or not PEM of its kind as a problem naming the member and the file, and does not start', async () => {
    const encrypted = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'secret' });
    const { dir, tls } = project(
      {
        broker: { url: 'rediss://localhost:1', tls: { ca: { file: 'missing.pem' }, cert: { file: 'tls' }, key: { file: 'tls/ca.pem' } } },
        rateLimitStore: { url: 'memcached://localhost', tls: { ca: 5 }, prefix: 'x' },
        transports: {
          amqp: { tls: { ca: [{ file: 'tls/ca.pem' }, { file: 'not-pem.json' }], cert: { file: 'broken.pem' }, key: { file: 'tls/localhost-key.pem', mode: 1 } } },
          nats: { tls: { key: { file: 'encrypted-key.pem' } } },
        },
        database: 'postgres://localhost/herald?sslmode=verify-full&sslrootcert=missing-ca.pem&sslkey=tls/localhost.pem',
      },
    );
    const config = join(dir, 'config');
    writeFileSync(join(config, 'not-pem.json'), '{}');
    writeFileSync(join(config, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    writeFileSync(join(config, 'encrypted-key.pem'), encrypted);

    const { code, stdout, stderr } = await runCli(['serve', '--config', 'config/herald.config.json'], { cwd: dir });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    const file = 'config/herald.config.json';
    expect(stderr.trim().split('\n').map((line) => line.trim())).toEqual([
      `herald: ${file} is not a valid Herald config (12 problems)`,
      `${file}: transports.amqp.tls.ca[1]: "${config}/not-pem.json" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      expect.stringMatching(new RegExp(`^${file}: transports\\.amqp\\.tls\\.cert: "${config}/broken\\.pem" holds a certificate that cannot be read: .+`)),
      `${file}: transports.amqp.tls.key: expected PEM text or { "file": "<path of a PEM file>" }`,
      `${file}: transports.nats.tls.key: "${config}/encrypted-key.pem" holds an encrypted private key, whose passphrase a JSON config cannot give: decrypt it (openssl pkey -in key.pem -out plain-key.pem), or give key: [{ pem, passphrase }] in a .ts or .js config`,
      `${file}: broker.tls.ca: cannot read "${config}/missing.pem": no such file`,
      `${file}: broker.tls.cert: cannot read "${tls}": it is a directory`,
      `${file}: broker.tls.key: "${tls}/ca.pem" holds no PEM private key (-----BEGIN PRIVATE KEY-----)`,
      `${file}: rateLimitStore.url: must be a redis:// or rediss:// URL`,
      `${file}: rateLimitStore.tls.ca: expected PEM text, { "file": "<path of a PEM file>" }, or a list of them`,
      `${file}: rateLimitStore.prefix: not a field Herald knows`,
      `${file}: database: sslrootcert: cannot read "${config}/missing-ca.pem": no such file`,
      `${file}: database: sslkey: "${tls}/localhost.pem" holds no PEM private key (-----BEGIN PRIVATE KEY-----)`,
    ]);
  });

  it('refuses tls with a redis:// URL, which is not TLS, as a problem of the config', async () => {
    const { dir } = project({ broker: { url: 'redis://localhost:6379', tls: tlsFiles } });
    const { code, stdout, stderr } = await runCli(['serve', '--config', 'config/herald.config.json'], { cwd: dir });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n').map((line) => line.trim())).toEqual([
      'herald: config/herald.config.json is not a valid Herald config (1 problem)',
      'config/herald.config.json: broker.tls: needs a rediss:// URL; url is redis://, without TLS',
    ]);
  });
});
