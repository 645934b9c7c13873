import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import * as webhook from '@herald/webhook';
import * as signing from '@herald/webhook/signing';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const sources = pathToFileURL(resolve(packageDir, 'src')).href;

/**
 * The modules a fresh process resolves when it imports `specifier` (from the sources, through tsx): an ESM
 * resolve hook, registered after tsx's, prints each URL it resolves. Node runs the hooks on a thread of their
 * own, which writes to the process's stdout directly.
 */
async function modulesLoadedBy(specifier: string): Promise<string[]> {
  const hooks = `import { writeSync } from 'node:fs';
    export async function resolve(specifier, context, next) {
      const resolved = await next(specifier, context);
      writeSync(1, 'resolved ' + resolved.url + '\\n');
      return resolved;
    }`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--conditions=herald-source', '--import', 'tsx', '--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', `await import(${JSON.stringify(specifier)})`],
    { cwd: packageDir, timeout: 60_000 },
  );
  const urls = [...stdout.matchAll(/^resolved (.+)$/gm)].map((match) => match[1] as string);
  return [...new Set(urls.filter((url) => !url.startsWith('node:')))];
}

describe('@herald/webhook/signing', () => {
  it("loads only its own few modules: none of @herald/core, @herald/outbox, kysely, zod, undici or OpenTelemetry", async () => {
    const loaded = await modulesLoadedBy('@herald/webhook/signing');
    expect(loaded).toContain(`${sources}/signing.ts`);
    expect(loaded.filter((url) => !url.startsWith(`${sources}/`))).toEqual([]);
    // What the check guards against: the package's main entry loads all of them.
    const everything = await modulesLoadedBy('@herald/webhook');
    for (const heavy of ['/packages/core/', '/packages/outbox/', '/kysely/', '/zod/']) expect(everything.some((url) => url.includes(heavy)), heavy).toBe(true);
  }, 120_000);

  it('holds what signs a request and makes secrets, the same functions the main entry exports', () => {
    expect(Object.keys(signing).sort()).toEqual([
      'generateSecret',
      'secretKey',
      'secretPattern',
      'secretPrefix',
      'signature',
      'signedHeaders',
      'testHeader',
      'webhookHeaders',
      'webhookRequest',
      'webhookTarget',
    ]);
    expect(webhook).toMatchObject(signing);
  });

  it('signs a request that a Standard Webhooks library verifies', () => {
    const config: signing.StoredWebhookConfig = { url: 'https://example.com/hooks', secret: signing.generateSecret() };
    const body = JSON.stringify({ id: 'evt_1', type: 'order.created', data: { total: 12.5 } });
    const { url, headers } = signing.webhookRequest(config, 'evt_1', body, Date.now());
    expect(url.href).toBe('https://example.com/hooks');
    expect(new Webhook(config.secret).verify(body, headers)).toEqual(JSON.parse(body));
  });
});
