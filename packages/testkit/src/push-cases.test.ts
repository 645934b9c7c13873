import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryTransport } from './memory-transport.js';
import type { PushHarness, SuiteCase, TransportHarness } from './transport-harness.js';
import { transportSuiteCases } from './transport-suite.js';

/** The kill case of the suite for a harness whose push process runs as `push` says; its receivers never see a delivery. */
function killCase(push: PushHarness): SuiteCase {
  const harness: TransportHarness = {
    transport: memoryTransport,
    async receive(app, { consumer, types }) {
      const { body } = await app.api('POST', '/v1/subscriptions', { transport: 'memory', types }, await app.consumerKey(consumer));
      return { subscriptionId: body.id, events: [], fail: async () => {}, close: async () => {} };
    },
    push,
  };
  const found = transportSuiteCases(harness).find((check) => check.name.startsWith('loses nothing when killed with SIGKILL'));
  if (!found) throw new Error('the suite has no kill case');
  return found;
}

const dir = mkdtempSync(join(tmpdir(), 'herald-push-cases-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the push cases' process", () => {
  it('says what to do when Node cannot load what its arguments preload (tsx by default), and then what Node said', async () => {
    const module = join(dir, 'transport.mjs');
    writeFileSync(module, 'export const transport = () => { throw new Error("never loaded"); };\n');
    const check = killCase({ module, nodeArguments: ['--conditions=herald-source', '--import', 'herald-loader-that-is-not-installed'] });
    const error = await check.run().then(
      () => undefined,
      (failed: Error) => failed,
    );
    expect(error?.message).toMatch(
      /^the Herald process did not start: it could not load herald-loader-that-is-not-installed \(node --conditions=herald-source --import herald-loader-that-is-not-installed\): install it \(npm i -D herald-loader-that-is-not-installed\) or set push\.nodeArguments\.\n/,
    );
    expect(error?.message).toContain("Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'herald-loader-that-is-not-installed'");
  }, 30_000);

  it('gives no such advice when the loader was found and the module failed of itself', async () => {
    const module = join(dir, 'imports-a-missing-package.mjs');
    writeFileSync(module, "import 'herald-package-that-is-not-installed';\nexport const transport = () => undefined;\n");
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const check = killCase({ module, nodeArguments: ['--conditions=herald-source', '--import', tsx] });
    const error = await check.run().then(
      () => undefined,
      (failed: Error) => failed,
    );
    expect(error?.message).toMatch(/^the Herald process did not start: /);
    expect(error?.message).toContain("Cannot find package 'herald-package-that-is-not-installed'");
    expect(error?.message).not.toContain('could not load');
  }, 30_000);
});
