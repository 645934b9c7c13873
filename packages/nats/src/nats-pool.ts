import { isIP } from 'node:net';
import type { Logger } from '@herald/core';
import { guardedLookup, type LookupFunction, refusedHost, SharedConnections } from '@herald/outbox';
import { type ConnectionOptions, connect, headers, type JetStreamClient, type NatsConnection } from 'nats';
import { redactedServer, serverUrl } from './nats-config.js';

export interface NatsPoolOptions {
  /** Connect to loopback, private and link-local addresses too. @default false */
  allowPrivate?: boolean;
  /** Resolves server host names; the address guard checks what it returns. @default dns.lookup */
  lookup?: LookupFunction;
  /** How long connecting may take, in ms. @default 15000 */
  connectTimeout?: number;
  /** Told when a connection opens, fails or closes, with the servers without their credentials. @default silent */
  logger?: Logger;
}

/** One message to publish. */
export interface NatsMessage {
  subject: string;
  body: Uint8Array;
  /** `Nats-Msg-Id`: the stream drops a second message with the same id. */
  msgID: string;
  /** `Herald-Seq`. */
  seq: number;
  /** When the PubAck must have come, connecting included (ms since the epoch). */
  deadline: number;
}

/** A failed publish, in words that name the servers without their credentials. */
export class NatsPublishError extends Error {
  override readonly name = 'NatsPublishError';
}

interface Client {
  connection: NatsConnection;
  jetstream: JetStreamClient;
}

/**
 * Connections to NATS, one per list of servers, each reconnecting by itself. A connection that closes
 * for good (refused credentials, say) is dropped, and the next publish opens a new one.
 */
export class NatsPool {
  readonly #options: NatsPoolOptions;
  /** By the list of servers, joined by newlines. */
  readonly #clients: SharedConnections<Client>;
  #closed = false;

  constructor(options: NatsPoolOptions = {}) {
    this.#options = options;
    this.#clients = new SharedConnections(({ connection }, key, gone) => {
      void connection.closed().then((error) => {
        if (!this.#closed) this.#options.logger?.warn({ servers: key.split('\n').map(redactedServer), ...(error ? { error: describe(error) } : {}) }, 'the NATS connection closed');
        gone();
      });
    });
  }

  /** Publishes one message to JetStream and resolves with the PubAck's stream; rejects with a {@link NatsPublishError}. */
  async publish(servers: readonly string[], message: NatsMessage): Promise<string> {
    const { jetstream } = await this.#client(servers);
    const timeout = Math.max(1, message.deadline - Date.now());
    const meta = headers();
    meta.set('Herald-Seq', String(message.seq));
    try {
      const ack = await jetstream.publish(message.subject, message.body, { msgID: message.msgID, timeout, headers: meta });
      return ack.stream;
    } catch (error) {
      const code = codeOf(error);
      const where = servers.map(redactedServer).join(', ');
      if (code === '503') throw new NatsPublishError(`no JetStream stream captures the subject "${message.subject}" on ${where} (no responders)`);
      if (code === 'TIMEOUT') throw new NatsPublishError(`no PubAck for "${message.subject}" from ${where} within ${timeout} ms`);
      throw new NatsPublishError(`publishing to "${message.subject}" on ${where} failed: ${describe(error)}`);
    }
  }

  /** Drains and closes every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#clients.takeAll().map((client) => client.then(({ connection }) => connection.close()).catch(() => {})));
  }

  #client(servers: readonly string[]): Promise<Client> {
    if (this.#closed) return Promise.reject(new NatsPublishError('the NATS transport is stopped'));
    return this.#clients.get(servers.join('\n'), () => this.#connect(servers));
  }

  async #connect(servers: readonly string[]): Promise<Client> {
    const where = servers.map(redactedServer);
    const urls = servers.map((text) => serverUrl(text) as URL);
    const { allowPrivate = false, connectTimeout = 15_000, logger } = this.#options;
    const credentials = urls.find((url) => url.username !== '');
    const options: ConnectionOptions = {
      name: 'herald',
      timeout: connectTimeout,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      ...(credentials
        ? credentials.password === ''
          ? { token: decoded(credentials.username) }
          : { user: decoded(credentials.username), pass: decoded(credentials.password) }
        : {}),
    };
    try {
      options.servers = allowPrivate ? urls.map((url) => (url.protocol === 'tls:' ? `tls://${url.host}` : url.host)) : await this.#guardedServers(urls);
      // A tls:// server makes the connection require TLS.
      if (urls.some((url) => url.protocol === 'tls:')) options.tls = {};
      // With the guard on, the servers a cluster gossips about are not taken on: they were not checked.
      if (!allowPrivate) Object.assign(options, { ignoreClusterUpdates: true, resolve: false });
      const connection = await connect(options);
      logger?.info({ servers: where }, 'connected to NATS');
      return { connection, jetstream: connection.jetstream() };
    } catch (error) {
      const why = error instanceof NatsPublishError ? error.message : describe(error);
      logger?.warn({ servers: where, error: why }, 'cannot connect to NATS');
      throw new NatsPublishError(`cannot connect to NATS at ${where.join(', ')}: ${why}`);
    }
  }

  /**
   * The servers as the addresses their names resolve to, each checked by the address guard, so that the
   * connection goes where the guard looked (no DNS rebinding). TLS servers keep their names, which their
   * certificates must match, once their addresses have passed the guard.
   */
  async #guardedServers(urls: readonly URL[]): Promise<string[]> {
    const lookup = guardedLookup(this.#options.lookup);
    const servers: string[] = [];
    for (const url of urls) {
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const port = url.port || '4222';
      const refused = refusedHost(host);
      if (refused) throw new NatsPublishError(refused.message);
      if (isIP(host) !== 0) {
        servers.push(url.host);
        continue;
      }
      const addresses = await new Promise<string[]>((resolve, reject) =>
        lookup(host, { all: true }, (error, found) =>
          error ? reject(error) : resolve((found as { address: string }[]).map(({ address }) => address)),
        ),
      );
      if (url.protocol === 'tls:') servers.push(`tls://${url.host}`);
      else servers.push(...addresses.map((address) => (isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`)));
    }
    return servers;
  }
}

/** A URL's user or password as the server expects it: percent-decoded when it is validly encoded. */
function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function codeOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}

function describe(error: unknown): string {
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'CONNECTION_REFUSED' || code === 'ECONNREFUSED') return 'connection refused (CONNECTION_REFUSED)';
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
