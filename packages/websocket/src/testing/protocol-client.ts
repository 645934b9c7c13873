import type { HeraldEvent, Transport } from '@herald/core';
import type { HeraldOptions } from '@herald/server';
import { appClosedAfterEach, type ConsumerSubscription, startTestApp, subscribeConsumer, type TestApp, waitFor } from '@herald/testkit';
import WebSocket from 'ws';
import { type WebSocketOptions, type WebSocketTransport, websocket } from '../index.js';

/** How a connection ended, as the client saw it. */
export interface Closed {
  code: number;
  reason: string;
}

export interface ConnectOptions {
  /** @default 'herald.v1' */
  protocols?: string | string[];
  /** Sent as `auth {token}` once open, when given. */
  token?: string;
  /** Sent as `Authorization: Bearer` on the upgrade, when given. */
  bearer?: string;
  /** Wait for `ready` before resolving (with `token` or `bearer`). @default true when either is given */
  waitReady?: boolean;
}

/** A real `ws` client speaking herald.v1 by hand, recording every message it receives. */
export class ProtocolClient {
  readonly messages: any[] = [];
  readonly closed: Promise<Closed>;
  closedWith?: Closed;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        resolve(this.closedWith);
      });
    });
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      if (!isBinary) this.messages.push(JSON.parse(data.toString()));
    });
  }

  /** Opens a connection to `url`; rejects when the upgrade is refused. */
  static async connect(url: string, options: ConnectOptions = {}): Promise<ProtocolClient> {
    const ws = new WebSocket(url, options.protocols ?? 'herald.v1', {
      ...(options.bearer !== undefined ? { headers: { authorization: `Bearer ${options.bearer}` } } : {}),
    });
    const client = new ProtocolClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    if (options.token !== undefined) client.send({ type: 'auth', token: options.token });
    if (options.waitReady ?? (options.token !== undefined || options.bearer !== undefined)) await client.next('ready');
    return client;
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** The events received on subscription `id`, in arrival order. */
  events(id: string): HeraldEvent[] {
    return this.messages.filter((message) => message.type === 'event' && message.id === id).map((message) => message.event);
  }

  /** The first message of `type` (and matching `where`) received so far, waiting for it. */
  async next(type: string, where: (message: any) => boolean = () => true, timeout = 10_000): Promise<any> {
    let found: any;
    await waitFor(() => (found = this.messages.find((message) => message.type === type && where(message))) !== undefined, `a ${type} message`, timeout);
    return found;
  }

  /** Subscribes and waits for `subscribed`. */
  async subscribe(message: Record<string, unknown> & { id: string }): Promise<{ after: number }> {
    this.send({ type: 'subscribe', ...message });
    return this.next('subscribed', (reply) => reply.id === message.id);
  }

  /** Closes, and terminates if the close handshake does not finish in a second (a paused socket never reads it). */
  async close(): Promise<Closed> {
    if (this.ws.readyState === WebSocket.CLOSED) return this.closed;
    this.ws.close();
    const timer = setTimeout(() => this.ws.terminate(), 1000);
    const closed = await this.closed;
    clearTimeout(timer);
    return closed;
  }
}

/** The HTTP answer to an upgrade the server refuses. */
export async function refusedUpgrade(url: string, options: { protocols?: string | string[]; bearer?: string } = {}) {
  const ws = new WebSocket(url, options.protocols ?? 'herald.v1', {
    ...(options.bearer !== undefined ? { headers: { authorization: `Bearer ${options.bearer}` } } : {}),
  });
  ws.on('error', () => {});
  return new Promise<{ status: number; body: any }>((resolve, reject) => {
    ws.once('open', () => reject(new Error('the upgrade was accepted')));
    ws.once('unexpected-response', (_request, response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
        ws.terminate();
      });
    });
  });
}

/** A test Herald with the WebSocket transport. */
export interface WsApp {
  app: TestApp;
  transport: WebSocketTransport;
  /** `ws://127.0.0.1:PORT/v1/ws` */
  url: string;
  /** A durable `websocket` subscription of `consumer`, created over REST with its key. */
  durable(consumer: string, types: string[]): Promise<ConsumerSubscription>;
  close(): Promise<void>;
}

export async function startWsApp(options: WebSocketOptions = {}, otherTransports: Transport[] = [], herald: Partial<HeraldOptions> = {}): Promise<WsApp> {
  const transport = websocket(options);
  const app = await startTestApp([transport, ...otherTransports], herald);
  return {
    app,
    transport,
    url: `${app.baseUrl.replace(/^http/, 'ws')}/v1/ws`,
    durable: (consumer, types) => subscribeConsumer(app, 'websocket', {}, { consumer, types }),
    close: () => app.close(),
  };
}

/**
 * A test file's app and clients, closed after each test (see `appClosedAfterEach`), with `connect` for a
 * client kept that way.
 */
export function closedAfterEach() {
  const opened = appClosedAfterEach(startWsApp);
  return {
    ...opened,
    async connect(url: string, options: Parameters<typeof ProtocolClient.connect>[1]): Promise<ProtocolClient> {
      return opened.track(await ProtocolClient.connect(url, options));
    },
  };
}
