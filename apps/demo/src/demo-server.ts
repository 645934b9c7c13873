import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { amqp } from '@herald/amqp';
import type { EventMapOf, Principal } from '@herald/core';
import { poll } from '@herald/poll';
import { portal, portalAppDirectory } from '@herald/portal';
import { nats } from '@herald/nats';
import { createHerald, type Herald, problemHandler, stopOnSignals } from '@herald/server';
import { sse } from '@herald/sse';
import { webhook } from '@herald/webhook';
import { websocket } from '@herald/websocket';
import express, { type Express } from 'express';
import { z } from 'zod';
import { demoEventTypes, exampleData } from './event-types.js';
import { WebhookInbox } from './webhook-inbox.js';

/** The consumer the page acts as. The demo owns it: its keys are replaced on every start. */
export const demoConsumer = 'demo-page';

/** Where `vite build` puts the page. */
export const pageDirectory = fileURLToPath(new URL('../dist/page', import.meta.url));

export interface DemoOptions {
  /** @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** `PORT` @default 3000 */
  port?: number;
  /** `HOST`: the demo hands the page a consumer key and publishes for it, so it stays on loopback unless told. @default '127.0.0.1' */
  host?: string;
  /** Stop on SIGTERM and SIGINT, then exit (`stopOnSignals`). @default true */
  handleSignals?: boolean;
}

export interface RunningDemo {
  herald: Herald<EventMapOf<typeof demoEventTypes>>;
  url: string;
  /** The admin key, when this start generated it. */
  adminKey: string | undefined;
  inbox: WebhookInbox;
  close(): Promise<void>;
}

const publishBody = z.object({ type: z.string(), data: z.unknown(), id: z.string().optional() });

/** Whether a webhook URL is a demo inbox (of this start or an earlier one, on whatever port). */
function isInboxUrl(url: unknown): boolean {
  return typeof url === 'string' && URL.canParse(url) && new URL(url).pathname === '/demo/inbox';
}

/**
 * The demo: a Herald with the webhook, WebSocket, SSE, long-polling, AMQP and NATS transports and the shop catalog, the built
 * page, the webhook inbox, and a few demo-only routes under `/demo` that let the page act as the
 * `demo-page` consumer and publish. Not a pattern for production: those routes need no credentials.
 */
export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const env = { ...(options.env ?? process.env) };
  // The inbox is on this machine: webhooks to loopback are refused unless allowed.
  env.HERALD_WEBHOOK_ALLOW_PRIVATE ??= '1';
  const transports = [webhook(), websocket(), sse(), poll(), amqp(), nats()];
  const herald = createHerald({ env, eventTypes: demoEventTypes, transports });
  await herald.ready;
  const adminKey = await herald.generatedAdminKey;

  // A fresh consumer key for the page on each start; the ones of earlier starts are revoked.
  for (const key of await herald.store.keys.list()) {
    if (key.consumer === demoConsumer && key.parentId === undefined && !key.revokedAt) await herald.keys.revoke(key.id);
  }
  const { record, key: consumerKey } = await herald.keys.create('consumer', demoConsumer);
  const pagePrincipal: Principal = { keyId: record.id, role: 'consumer', consumer: demoConsumer };

  const inbox = new WebhookInbox(async () =>
    (await herald.subscriptions.list({ transport: 'webhook' }))
      .filter((subscription) => isInboxUrl(subscription.config.url))
      .map((subscription) => {
        const config = subscription.config as { secret: string; previousSecrets?: { secret: string }[] };
        return { subscriptionId: subscription.id, secrets: [config.secret, ...(config.previousSecrets ?? []).map((previous) => previous.secret)] };
      }),
  );
  let baseUrl = '';
  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${consumerKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  };

  const app: Express = express();
  app.disable('x-powered-by');
  app.use(inbox.router());
  app.get('/demo/session', (_req, res) => {
    res.json({
      consumer: demoConsumer,
      consumerKey,
      latestSeq: herald.bus.latest,
      inboxUrl: `${baseUrl}/demo/inbox`,
      transports: transports.map(({ name, kind }) => ({ name, kind: kind ?? 'stream' })),
      eventTypes: herald.catalog.list().map(({ name, description }) => ({
        name,
        ...(description ? { description } : {}),
        example: (exampleData as Record<string, unknown>)[name] ?? {},
      })),
    });
  });
  app.post('/demo/stream-token', async (_req, res) => {
    const { record: token, key } = await herald.keys.createStreamToken(pagePrincipal, { ttl: 600 });
    res.status(201).json({ token: key, expiresAt: token.expiresAt });
  });
  app.post('/demo/publish', express.json(), async (req, res) => {
    const { event, created } = await herald.publish(publishBody.parse(req.body) as never);
    res.status(created ? 202 : 200).json({ id: event.id, seq: event.seq });
  });
  // The consumer portal, opened for the page's consumer with a session issued by an admin key of the store.
  if (existsSync(portalAppDirectory)) app.use('/portal', portal());
  app.get('/demo/portal', async (_req, res) => {
    const admin = (await herald.store.keys.list()).find((key) => key.role === 'admin' && !key.revokedAt && !key.expiresAt);
    if (!admin) return void res.status(503).type('text').send('No admin key to open a portal session with');
    const { key } = await herald.keys.createPortalToken({ keyId: admin.id, role: 'admin' }, demoConsumer, 3_600);
    res.redirect(303, `/portal#token=${key}`);
  });
  if (existsSync(pageDirectory)) app.use(express.static(pageDirectory));
  else {
    app.get('/', (_req, res) => {
      res.type('text').send('The page is not built: run `pnpm start` (it builds it), or `pnpm --filter @herald/demo build:page`.');
    });
  }
  app.use(herald.app);
  // The demo's own routes answer as Herald's do: problem+json (a body that is not JSON: 400; too large: 413), never a stack trace.
  app.use(problemHandler((error) => herald.logger.error({ err: error }, 'unexpected error')));

  const host = options.host ?? env.HOST ?? '127.0.0.1';
  const listening = await herald.listen({ handler: app, host, handleSignals: false, ...(options.port !== undefined ? { port: options.port } : {}) });
  baseUrl = `http://${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${listening.port}`;

  // The page's inbox subscription, made through the REST API as a consumer would. An active one of an
  // earlier start at this address is kept, with the deliveries it still owes (those the inbox refused while
  // the demo stopped); the other inbox subscriptions, at another port or made in the page, are deleted.
  const inboxUrl = `${baseUrl}/demo/inbox`;
  const { body: existing } = await api('GET', '/v1/subscriptions?transport=webhook');
  let kept = false;
  for (const subscription of (existing?.data ?? []) as { id: string; types: string[]; status: string; config: { url?: unknown } }[]) {
    if (!isInboxUrl(subscription.config.url)) continue;
    const pages = subscription.config.url === inboxUrl && subscription.types.join() === '**' && subscription.status === 'active';
    if (pages && !kept) kept = true;
    else await api('DELETE', `/v1/subscriptions/${subscription.id}`);
  }
  if (!kept) {
    const created = await api('POST', '/v1/subscriptions', { transport: 'webhook', types: ['**'], config: { url: inboxUrl } });
    if (created.status !== 201) throw new Error(`subscribing the inbox failed: ${JSON.stringify(created.body)}`);
  }

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      stopHandlingSignals?.();
      inbox.close();
      await herald.close();
    })());
  const stopHandlingSignals = (options.handleSignals ?? true) ? stopOnSignals(close, herald.logger) : undefined;
  return { herald, url: listening.url, adminKey, inbox, close };
}
