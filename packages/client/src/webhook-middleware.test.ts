import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type Request } from 'express';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type VerifiedWebhookRequest, webhookMiddleware } from './webhook-middleware.js';

const secret = `whsec_${randomBytes(32).toString('base64')}`;

async function listen(handler: Parameters<typeof createServer>[1] | Express): Promise<string> {
  const server = createServer(handler as Parameters<typeof createServer>[1]);
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

/** POSTs `body` signed with `with` (the right secret by default), as Herald would. */
function post(url: string, body: string, { with: key = secret, id = 'evt_1' } = {}) {
  const at = new Date();
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': new Webhook(key).sign(id, at, body),
    },
    body,
  });
}

/** An express app whose webhook route records what its handler saw. */
function appWith(seen: unknown[], before: express.RequestHandler[] = []) {
  const app = express();
  for (const handler of before) app.use(handler);
  app.post('/hook', webhookMiddleware({ secret, limit: 1024 }), (req: Request, res) => {
    const verified = req as unknown as VerifiedWebhookRequest;
    seen.push({ body: verified.body, raw: new TextDecoder().decode(verified.rawBody), webhook: verified.webhook });
    res.status(204).end();
  });
  return app;
}

describe('webhookMiddleware', () => {
  it('verifies the raw bytes, then hands the handler the parsed body and the raw one', async () => {
    const seen: unknown[] = [];
    const url = await listen(appWith(seen));
    // Spacing that JSON.stringify would not reproduce: only the raw bytes verify.
    const body = '{ "type" : "order.created",\n  "data": {"n": 1} }';
    expect((await post(url, body, { id: 'evt_42' })).status).toBe(204);
    expect(seen).toEqual([{ body: { type: 'order.created', data: { n: 1 } }, raw: body, webhook: { id: 'evt_42', timestamp: expect.any(Number) } }]);
  });

  it('answers 401 with the reason and never calls the handler when verification fails', async () => {
    const seen: unknown[] = [];
    const url = await listen(appWith(seen));
    const forged = await post(url, '{"n":1}', { with: `whsec_${randomBytes(32).toString('base64')}` });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toMatchObject({ error: 'invalid-signature' });
    const unsigned = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(unsigned.status).toBe(401);
    expect(await unsigned.json()).toMatchObject({ error: 'missing-header' });
    const tooBig = await post(url, JSON.stringify({ pad: 'x'.repeat(2000) }));
    expect(tooBig.status).toBe(413);
    expect(seen).toEqual([]);
  });

  it('works behind express.raw() and express.text(), and says how to fix it when express.json() ran first', async () => {
    const seen: unknown[] = [];
    const rawUrl = await listen(appWith(seen, [express.raw({ type: 'application/json' })]));
    expect((await post(rawUrl, '{"n":2}')).status).toBe(204);
    expect(seen).toEqual([expect.objectContaining({ body: { n: 2 }, raw: '{"n":2}' })]);
    const textUrl = await listen(appWith(seen, [express.text({ type: 'application/json' })]));
    expect((await post(textUrl, '{"n":"ünï ✓"}')).status).toBe(204);
    expect(seen[1]).toEqual(expect.objectContaining({ body: { n: 'ünï ✓' }, raw: '{"n":"ünï ✓"}' }));
    seen.splice(1);

    const jsonApp = appWith(seen, [express.json()]);
    const errors: string[] = [];
    jsonApp.use((error: Error, _req: Request, res: express.Response, _next: express.NextFunction) => {
      errors.push(error.message);
      res.status(500).end();
    });
    const jsonUrl = await listen(jsonApp);
    expect((await post(jsonUrl, '{"n":3}')).status).toBe(500);
    expect(errors[0]).toMatch(/before express\.json\(\)/);
    expect(seen).toHaveLength(1);
  });

  it("answers Herald's endpoint verification challenge itself", async () => {
    const seen: unknown[] = [];
    const url = await listen(appWith(seen));
    const challenge = randomBytes(16).toString('base64url');
    const response = await post(url, JSON.stringify({ type: 'herald.endpoint.verification', data: { challenge } }), { id: 'ver_1' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ challenge });
    expect(seen).toEqual([]);
  });

  it('runs on a plain Node.js server', async () => {
    const middleware = webhookMiddleware({ secret });
    const seen: unknown[] = [];
    const url = await listen((req: IncomingMessage, res: ServerResponse) =>
      middleware(req, res, (error) => {
        if (error) {
          res.statusCode = 500;
          res.end();
          return;
        }
        seen.push((req as unknown as VerifiedWebhookRequest).body);
        res.statusCode = 200;
        res.end('ok');
      }),
    );
    expect((await post(url, '{"n":4}')).status).toBe(200);
    expect((await post(url, '{"n":4}', { with: `whsec_${randomBytes(24).toString('base64')}` })).status).toBe(401);
    expect(seen).toEqual([{ n: 4 }]);
  });
});
