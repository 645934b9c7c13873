import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type HeraldEvent, type SqlStore, sqliteStore } from '@herald/core';
import { Webhook } from 'standardwebhooks';
import { onTestFinished } from 'vitest';
import { testTls } from './test-tls.test-support.js';

/** One request as a test receiver saw it. */
export interface ReceivedRequest {
  /** 1 for the first request to this receiver. */
  n: number;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** What a receiver does with a request: answer (after an optional delay), hang, or drop the connection. */
export type Reply =
  | { status: number; headers?: Record<string, string>; body?: string; delay?: number }
  | { hang: true }
  | { destroy: true };

export type ReplyFn = (request: ReceivedRequest) => Reply;

/** A real HTTP receiver on 127.0.0.1 with an ephemeral port. */
export interface TestReceiver {
  url: string;
  port: number;
  readonly requests: ReceivedRequest[];
  /** The distinct `webhook-id`s received. */
  ids(): Set<string>;
  /** Changes how it answers from now on. */
  reply(fn: ReplyFn): void;
  close(): Promise<void>;
}

const ok: ReplyFn = () => ({ status: 204 });

/**
 * Starts a receiver, closed when the test finishes; by default it answers every request 204. With `tls`,
 * it answers HTTPS at `https://localhost:<port>` with a certificate signed by {@link testTls}'s authority.
 */
export async function startReceiver(replyFn: ReplyFn = ok, port = 0, { tls = false } = {}): Promise<TestReceiver> {
  let reply = replyFn;
  const requests: ReceivedRequest[] = [];
  const hanging = new Set<ServerResponse>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: ReceivedRequest = { n: requests.length + 1, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      requests.push(request);
      const answer = reply(request);
      if ('hang' in answer) {
        hanging.add(res);
        return;
      }
      if ('destroy' in answer) {
        req.socket.destroy();
        return;
      }
      const send = () => {
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
      };
      if (answer.delay) setTimeout(send, answer.delay);
      else send();
    });
  };
  const server = tls ? createHttpsServer({ key: readFileSync(testTls.key), cert: readFileSync(testTls.cert) }, handle) : createServer(handle);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve) => {
      for (const res of hanging) res.destroy();
      server.close(() => resolve());
      server.closeAllConnections();
    });
  onTestFinished(close);
  return {
    url: tls ? `https://localhost:${address.port}/hook` : `http://127.0.0.1:${address.port}/hook`,
    port: address.port,
    requests,
    ids: () => new Set(requests.map((request) => String(request.headers['webhook-id']))),
    reply(fn) {
      reply = fn;
    },
    close,
  };
}

/** Opens the SQLite store at `database` as another node (or a node started again) would; closed when the test finishes. */
export async function openStore(database: string): Promise<SqlStore> {
  const store = sqliteStore({ path: database });
  await store.init();
  onTestFinished(() => store.close());
  return store;
}

/** Checks a request with the independent `standardwebhooks` package and returns the event it carries. */
export function verifiedEvent(secret: string, request: ReceivedRequest): HeraldEvent {
  return new Webhook(secret).verify(request.body, {
    'webhook-id': String(request.headers['webhook-id']),
    'webhook-timestamp': String(request.headers['webhook-timestamp']),
    'webhook-signature': String(request.headers['webhook-signature']),
  }) as HeraldEvent;
}
