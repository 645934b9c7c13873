import { cpSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { defineRoute, type Transport } from '@herald/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ZodError, z } from 'zod';
import * as zodMini from 'zod/mini';
import * as zod3 from 'zod/v3';
import { tempFolder } from '../../core/src/temp-folder.test-support.js';
import { startTestApp } from '../../testkit/src/test-app.js';

/** Another copy of zod 4, as an app with its own zod in its node_modules has: the server's, copied to a folder of its own. */
async function secondZod(): Promise<typeof import('zod')> {
  const installed = dirname(createRequire(import.meta.url).resolve('zod/package.json'));
  const copy = join(tempFolder(), 'node_modules', 'zod');
  cpSync(installed, copy, { recursive: true, filter: (path) => statSync(path).isDirectory() || /\.js$|package\.json$/.test(path) });
  return import(pathToFileURL(join(copy, 'index.js')).href);
}

/** A transport whose route `GET /v1/test-parse?with=…` parses `{}` with an app's schema, of the zod named, which throws. */
function parsingTransport(parsers: Record<string, () => unknown>): Transport {
  return {
    name: 'parsing',
    async start(context) {
      context.http.route(
        defineRoute({ method: 'GET', path: '/v1/test-parse', query: z.object({ with: z.string() }), handle: ({ query }) => ({ body: parsers[query.with]?.() }) }),
      );
    },
    async stop() {},
  };
}

describe("an error of the app's own zod, thrown by a route", () => {
  it('is a 422 validation-failed with its issues, from another copy of zod 4, zod mini and zod 3 alike', async () => {
    const other = await secondZod();
    expect(other.ZodError).not.toBe(ZodError);
    const parsers = {
      copy: () => other.object({ orderId: other.string() }).parse({}),
      mini: () => zodMini.object({ orderId: zodMini.string() }).parse({}),
      zod3: () => zod3.z.object({ orderId: zod3.z.string() }).parse({}),
    };
    const app = await startTestApp([parsingTransport(parsers)]);
    onTestFinished(() => app.close());
    for (const name of Object.keys(parsers)) {
      const response = await fetch(`${app.baseUrl}/v1/test-parse?with=${name}`, { headers: { authorization: `Bearer ${app.adminKey}` } });
      expect(response.headers.get('content-type'), name).toMatch(/^application\/problem\+json/);
      expect({ status: response.status, body: await response.json() }, name).toEqual({
        status: 422,
        body: {
          type: 'urn:herald:problem:validation-failed',
          title: 'Validation failed',
          status: 422,
          errors: [{ path: ['orderId'], message: expect.any(String), code: 'invalid_type' }],
        },
      });
    }
  });
});
