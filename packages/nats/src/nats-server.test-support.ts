/** The machine's NATS with JetStream, nats-server processes of the tests' own, and JetStream consumers made with the `nats` client. */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HeraldEvent } from '@herald/core';
import { waitFor } from '@herald/testkit';
import { AckPolicy, type ConnectionOptions, type ConsumerMessages, connect, type JsMsg, type NatsConnection } from 'nats';
import { freePort } from '../../testkit/src/free-port.test-support.js';
import { slowLink, startTcpRelay, type TcpRelay } from '../../testkit/src/tcp-relay.test-support.js';
import { testTls } from '../../webhook/src/test-tls.test-support.js';

export const natsServer = process.env.HERALD_TEST_NATS_SERVER ?? '127.0.0.1:4222';

/** A name no other test uses: streams outlive a test that fails. */
export const uniqueName = () => `herald_test_${randomBytes(6).toString('hex')}`;

/** A message as the consumer got it. */
export interface Received {
  event: HeraldEvent;
  message: JsMsg;
}

/** A stream of its own (capturing `<prefix>.>`) and a durable pull consumer on it. */
export interface StreamConsumer {
  stream: string;
  /** Every subject of the stream starts with it: give subscriptions `<prefix>.{type}`. */
  prefix: string;
  received: Received[];
  readonly events: HeraldEvent[];
  ids(): Set<string>;
  /**
   * Makes the stream stop capturing its subjects, so that publishing to them fails for want of a stream,
   * or capture them again. What it stored stays, and the consumer goes on.
   */
  refuse(refusing: boolean): Promise<void>;
  /** Connects again and goes on consuming, e.g. after the server restarted. */
  reconnect(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a {@link StreamConsumer} on `server`, connecting with `options` too (e.g. `tls: { ca }`). */
export async function startStreamConsumer(server = natsServer, options: Partial<ConnectionOptions> = {}): Promise<StreamConsumer> {
  const stream = uniqueName();
  const prefix = `herald-test.${stream}`;
  const received: Received[] = [];
  let connection: NatsConnection;
  let messages: ConsumerMessages | undefined;
  const declare = async () => {
    const manager = await connection.jetstreamManager();
    await manager.streams.add({ name: stream, subjects: [`${prefix}.>`] });
    await manager.consumers.add(stream, { durable_name: 'test', ack_policy: AckPolicy.Explicit });
  };
  const consume = async () => {
    const consumer = await connection.jetstream().consumers.get(stream, 'test');
    const current = await consumer.consume();
    messages = current;
    void (async () => {
      for await (const message of current) {
        received.push({ event: JSON.parse(message.string()) as HeraldEvent, message });
        message.ack();
      }
    })().catch(() => {});
  };
  const open = async () => {
    connection = await connect({ ...options, servers: server, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    const manager = await connection.jetstreamManager();
    const exists = await manager.streams.info(stream).then(() => true, () => false);
    if (!exists) await declare();
    await consume();
  };
  await open();
  return {
    stream,
    prefix,
    received,
    get events() {
      return received.map(({ event }) => event);
    },
    ids: () => new Set(received.map(({ event }) => event.id)),
    async refuse(refusing) {
      const subjects = [refusing ? `${prefix}-refused.>` : `${prefix}.>`];
      await (await connection.jetstreamManager()).streams.update(stream, { subjects });
    },
    async reconnect() {
      messages?.stop();
      await connection.close().catch(() => {});
      await open();
    },
    async close() {
      messages?.stop();
      await (await connection.jetstreamManager()).streams.delete(stream).catch(() => {});
      await connection.close().catch(() => {});
    },
  };
}

/** A nats-server with JetStream of the test's own, on a port of its own, which the test may stop and start again. */
export interface OwnNatsServer {
  /** `127.0.0.1:<port>`; with TLS, `tls://localhost:<port>`. */
  server: string;
  /** What a client needs to connect besides `server`: with TLS, `tls: { ca }` trusting {@link testTls}'s authority (and its `cert` and `key` when the server requires a client certificate). */
  clientOptions: Partial<ConnectionOptions>;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

async function reachable(server: string, options: Partial<ConnectionOptions>): Promise<boolean> {
  try {
    const connection = await connect({ ...options, servers: server, reconnect: false, timeout: 500 });
    await connection.close();
    return true;
  } catch {
    return false;
  }
}

/** The credentials a nats-server of the test's own requires: a user and password, or a token. */
export type OwnNatsAuth = { user: string; pass: string } | { token: string };

/**
 * Starts a nats-server of the test's own. With `tls`, it requires TLS of every client and presents {@link testTls}'s
 * certificate for `localhost`; with `clientCertificate` too, it requires of every client a certificate that
 * {@link testTls}'s authority signed (its certificate for `localhost` will do). With `auth`, it requires those credentials.
 */
export async function startOwnNatsServer({
  tls = false,
  clientCertificate = false,
  auth,
  binary = process.env.HERALD_TEST_NATS_BINARY ?? '/usr/sbin/nats-server',
}: { tls?: boolean; clientCertificate?: boolean; auth?: OwnNatsAuth; binary?: string } = {}): Promise<OwnNatsServer> {
  const port = await freePort();
  const storage = mkdtempSync(join(tmpdir(), 'herald-nats-'));
  const server = tls ? `tls://localhost:${port}` : `127.0.0.1:${port}`;
  const presented = clientCertificate ? { cert: readFileSync(testTls.cert, 'utf8'), key: readFileSync(testTls.key, 'utf8') } : {};
  const clientOptions: Partial<ConnectionOptions> = { ...(tls ? { tls: { ca: readFileSync(testTls.ca, 'utf8'), ...presented } } : {}), ...auth };
  const tlsArguments = tls ? ['--tls', '--tlscert', testTls.cert, '--tlskey', testTls.key, ...(clientCertificate ? ['--tlsverify', '--tlscacert', testTls.ca] : [])] : [];
  const authArguments = !auth ? [] : 'token' in auth ? ['--auth', auth.token] : ['--user', auth.user, '--pass', auth.pass];
  let child: ChildProcess | undefined;
  const start = async () => {
    const started = spawn(binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storage, ...tlsArguments, ...authArguments], { stdio: 'ignore' });
    child = started;
    await waitFor(() => started.exitCode !== null || reachable(server, clientOptions), 'nats-server to listen', 20_000);
    if (started.exitCode !== null) throw new Error(`nats-server exited with ${started.exitCode}`);
  };
  const stop = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    server,
    clientOptions,
    start,
    stop,
    async close() {
      await stop();
      rmSync(storage, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP server of the test's own that takes every connection and never closes one: it answers nothing (a tarpit), or
 * sends its first connection a NATS server's INFO and the others nothing, or sends each connection an INFO that requires
 * TLS and then never answers the TLS handshake.
 */
export interface Tarpit {
  /** `127.0.0.1:<port>`. */
  server: string;
  /** How many connections it took. */
  accepted(): number;
  /** How many of them are open. */
  open(): number;
  close(): Promise<void>;
}

/**
 * Starts a {@link Tarpit} on `port` (an ephemeral one unless given): `silent`, `info-once` (INFO to the first
 * connection only), or `tls-stall` (an INFO with `tls_required`, then nothing: the client's TLS handshake is never answered).
 */
export async function startTarpit(mode: 'silent' | 'info-once' | 'tls-stall' = 'silent', { port = 0 }: { port?: number } = {}): Promise<Tarpit> {
  const open = new Set<Socket>();
  let accepted = 0;
  const listener = createServer((socket) => {
    accepted += 1;
    open.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => open.delete(socket));
    const info = { server_id: 'tarpit', version: '2.10.0', max_payload: 1048576, ...(mode === 'tls-stall' ? { tls_required: true } : {}) };
    if ((mode === 'info-once' && accepted === 1) || mode === 'tls-stall') socket.write(`INFO ${JSON.stringify(info)}\r\n`);
    // It reads what it is sent (and drops it), so that it sees the client close: a socket with unread data never ends.
    socket.resume();
  });
  await new Promise<void>((resolve) => listener.listen(port, '127.0.0.1', resolve));
  return {
    server: `127.0.0.1:${(listener.address() as { port: number }).port}`,
    accepted: () => accepted,
    open: () => open.size,
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise((resolve) => listener.close(resolve));
    },
  };
}

/** A {@link TcpRelay} to the machine's NATS that may stall a connection on its first publish. */
export interface StallingRelay extends TcpRelay {
  /** Whether a connection has stalled on its first publish. */
  stalled(): boolean;
}

/** Reads the lines a client sends, chunk by chunk, and tells whether it published (`PUB` or `HPUB`). */
function publishSeen(): (chunk: Buffer) => boolean {
  // The client's lines up to its first publish: CONNECT, PING, PONG, SUB and UNSUB, none of which carries a payload.
  let unread = '';
  return (chunk) => {
    unread += chunk.toString('latin1');
    for (let end = unread.indexOf('\r\n'); end !== -1; end = unread.indexOf('\r\n')) {
      if (/^H?PUB\s/i.test(unread.slice(0, end))) return true;
      unread = unread.slice(end + 2);
    }
    return false;
  };
}

/**
 * Starts a {@link StallingRelay} to {@link natsServer}. With `stallOnPublish`, the first connection on which the client
 * publishes holds what the server sends from that publish on: it was set up (INFO, CONNECT, PONG and the reply
 * subscription went through), and the PubAck never comes. The connections after it are relayed in full.
 */
export async function startStallingRelay({ stallOnPublish = false }: { stallOnPublish?: boolean } = {}): Promise<StallingRelay> {
  let stalled = false;
  const relay = await startTcpRelay(natsServer, {
    onConnection(connection) {
      if (!stallOnPublish) return undefined;
      const seen = publishSeen();
      return {
        fromClient(chunk) {
          if (!stalled && seen(chunk)) {
            stalled = true;
            connection.hold('server-to-client');
          }
          return undefined;
        },
      };
    },
  });
  return Object.assign(relay, { stalled: () => stalled });
}

/**
 * Starts a {@link TcpRelay} to {@link natsServer} over a slow link: what the server sends reaches the client `latency` ms
 * later (what comes meanwhile, with it). A server that is healthy, but whose every answer, the INFO, the PONG to CONNECT
 * and each PubAck, takes that long.
 */
export function startSlowRelay(latency: number): Promise<TcpRelay> {
  return startTcpRelay(natsServer, { onConnection: slowLink(latency) });
}
