import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe } from 'node:diagnostics_channel';
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { checkServerIdentity, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { Logger, TlsSettings } from '@herald/core';
import { allowPrivateHint, destinationLookup, type LookupFunction, lookupWithin, openSslReason, refusedHost, SharedConnections, waitCutShort } from '@herald/outbox';
import { type ConnectionOptions, connect, headers, type JetStreamClient, type NatsConnection, type TlsOptions } from 'nats';
import { redactedServer, serverUrl } from './nats-config.js';

export interface NatsPoolOptions {
  /** Connect to loopback, private and link-local addresses too. @default false */
  allowPrivate?: boolean;
  /**
   * Connect over TLS only, whatever a server's scheme and INFO say: a server without TLS fails the connect. With it
   * off, a `nats://` server is reached over TLS only when its INFO, read in the clear, says it requires or offers TLS.
   * @default true, unless `allowPrivate`
   */
  requireTls?: boolean;
  /** Resolves server host names; the address guard checks what it returns. @default dns.lookup */
  lookup?: LookupFunction;
  /** What TLS trusts and presents, for every TLS connection. @default Node.js's trusted authorities, no client certificate */
  tls?: TlsSettings;
  /** How long connecting may take (resolving names included), in ms. @default 15000 */
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
  /** A test event (`POST /v1/subscriptions/:id/test`), marked with `Herald-Test: 1`. @default false */
  test?: boolean;
  /** When the PubAck must have come, connecting included (ms since the epoch). */
  deadline: number;
}

/** A failed publish, in words that name the servers without their credentials. */
export class NatsPublishError extends Error {
  override readonly name = 'NatsPublishError';
}

/** An open connection of the pool. */
interface Client {
  /** Its {@link clientKey}. */
  key: string;
  connection: NatsConnection;
  jetstream: JetStreamClient;
}

/** An address a server's name resolved to (or the address it was listed by), and that name. */
interface ServerAddress {
  name: string;
  address: string;
  port: number;
}

/**
 * Connections to NATS, one per list of servers. A connection that closes (the server went away, refused credentials)
 * is dropped, and the next publish opens a new one: nats.js does not reconnect by itself. A connection on which a
 * PubAck did not come in time, though the publish waited for it at least half of its time, is retired: the next publish
 * opens a new one, and it is closed once the publishes still on it have settled (their PubAcks may yet come: a server
 * that is slow, not wedged, loses none of them).
 */
export class NatsPool {
  readonly #options: NatsPoolOptions;
  /** By {@link clientKey}. */
  readonly #clients: SharedConnections<Client>;
  #closed = false;

  constructor(options: NatsPoolOptions = {}) {
    this.#options = options;
    this.#clients = new SharedConnections(
      (client, key, gone) => {
        void client.connection.closed().then((error) => {
          if (!this.#closed) this.#options.logger?.warn({ servers: shownServers(key), ...(error ? { error: describe(error) } : {}) }, 'the NATS connection closed');
          gone();
        });
      },
      (retired) => void retired.connection.close().catch(() => {}),
    );
  }

  /** Publishes one message to JetStream and resolves with the PubAck's stream; rejects with a {@link NatsPublishError}. */
  async publish(servers: readonly string[], message: NatsMessage): Promise<string> {
    const started = Date.now();
    const client = await this.#client(servers);
    const release = this.#clients.sending(client);
    try {
      return await this.#publishOn(client, servers, message, started);
    } finally {
      release();
    }
  }

  /**
   * Closes every connection, retired ones too; publishes still waiting for a PubAck fail. nats.js closes the socket at
   * once, without waiting for the server: a server that answers nothing does not hold up the close.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#clients.takeAll().map((client) => client.then(({ connection }) => connection.close()).catch(() => {})));
  }

  /** Publishes `message` on `client`, within what is left of the attempt that `started` then (ms since the epoch). */
  async #publishOn(client: Client, servers: readonly string[], message: NatsMessage, started: number): Promise<string> {
    const { jetstream } = client;
    const connected = Date.now();
    const timeout = Math.max(1, message.deadline - connected);
    const where = servers.map(redactedServer).join(', ');
    const meta = headers();
    meta.set('Herald-Seq', String(message.seq));
    if (message.test) meta.set('Herald-Test', '1');
    try {
      const ack = await jetstream.publish(message.subject, message.body, { msgID: message.msgID, timeout, headers: meta });
      // nats.js takes any answer without an error for a PubAck: a plain subscriber of the subject may have answered.
      if (typeof ack.stream !== 'string' || ack.stream === '' || !Number.isSafeInteger(ack.seq) || ack.seq < 1 || 'error' in ack) {
        throw new NatsPublishError(
          `the answer to "${message.subject}" from ${where} is no JetStream PubAck, which names the stream and the message's seq: a subscriber of the subject, not a stream, may have answered`,
        );
      }
      return ack.stream;
    } catch (error) {
      if (error instanceof NatsPublishError) throw error;
      const code = codeOf(error);
      if (code === '503') throw new NatsPublishError(`no JetStream stream captures the subject "${message.subject}" on ${where} (no responders)`);
      if (code === 'TIMEOUT') {
        const why = `no PubAck for "${message.subject}" from ${where} within ${timeout} ms`;
        const cutShort = waitCutShort(why, { what: 'connecting', took: connected - started }, message.deadline - started);
        if (cutShort) throw new NatsPublishError(cutShort);
        this.#retire(client, why);
        throw new NatsPublishError(why);
      }
      throw new NatsPublishError(`publishing to "${message.subject}" on ${where} failed: ${describe(error)}`);
    }
  }

  /**
   * Takes `client` out of the pool, since a PubAck on it did not come in time (a server or a proxy that stopped
   * answering, or a stream too slow): the next publish opens a new connection rather than waiting on this one.
   */
  #retire(client: Client, why: string): void {
    if (this.#closed) return;
    const publishing = this.#clients.retire(client.key, client);
    if (publishing === undefined) return;
    this.#options.logger?.warn(
      { servers: shownServers(client.key), error: why, publishing },
      'no PubAck from NATS in time: new publishes go to a new connection, and this one closes once the publishes on it have settled',
    );
  }

  #client(servers: readonly string[]): Promise<Client> {
    if (this.#closed) return Promise.reject(new NatsPublishError('the NATS transport is stopped'));
    return this.#clients.get(clientKey(servers), () => this.#connect(servers));
  }

  async #connect(servers: readonly string[]): Promise<Client> {
    const where = servers.map(redactedServer);
    const urls = servers.map((text) => serverUrl(text) as URL);
    const { allowPrivate = false, requireTls = !allowPrivate, connectTimeout = 15_000, logger } = this.#options;
    // Anyone on the way may rewrite the INFO, which comes in the clear: only what Herald requires is sure to use TLS.
    const tlsRequiredBy = urls.some((url) => url.protocol === 'tls:') ? 'tls://' : requireTls ? 'Herald' : undefined;
    const deadline = Date.now() + connectTimeout;
    const credentials = urls.find((url) => url.username !== '');
    const options: ConnectionOptions = {
      name: 'herald',
      // Herald retries each delivery on its own schedule, and each retry that finds no connection makes one within its
      // timeout: names resolved and checked again (a server that moved is found), the INFO read first, and every socket
      // of a failed connect closed. nats.js's reconnections would dial in the background, every 500 ms whether a delivery
      // is due or not, to the addresses of the first connect, and leave the socket of a dial it gave up on open.
      reconnect: false,
      // nats.js dials the addresses Herald resolved, and the guard checked: it does not resolve names again.
      resolve: false,
      // With the guard on, the servers a cluster gossips about are not taken on: they were not checked.
      ...(allowPrivate ? {} : { ignoreClusterUpdates: true }),
      ...(credentials
        ? credentials.password === ''
          ? { token: decoded(credentials.username) }
          : { user: decoded(credentials.username), pass: decoded(credentials.password) }
        : {}),
    };
    try {
      const addresses = await this.#addresses(urls, deadline);
      options.servers = addresses.map(({ address, port }) => (isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`));
      // The INFO takes at most half of the time left, so that connecting has the other half. No INFO, no connection:
      // nats.js is not asked to connect where no server answers.
      const info = await firstInfo(addresses, Date.now() + (deadline - Date.now()) / 2);
      // nats.js requires TLS of a connection given TLS options, and a server without TLS is refused: they are given
      // when TLS is required, or when the server first reached says it requires or offers TLS.
      if (tlsRequiredBy !== undefined || info.tls_required === true || info.tls_available === true) options.tls = this.#tlsOptions(addresses);
      // nats.js gives each dial this long (TCP, TLS, CONNECT and its PONG), and tries each address once.
      const dialTimeout = Math.max(1, Math.floor((deadline - Date.now()) / addresses.length));
      options.timeout = dialTimeout;
      const sockets: Socket[] = [];
      watchNatsSockets();
      const connection = await dialling.run(sockets, () => connect(options)).catch((error: unknown) => {
        destroyAll(sockets);
        throw codeOf(error) === 'TIMEOUT' ? new NatsPublishError(notConnectedWithin(dialTimeout, options.tls !== undefined)) : error;
      });
      // The last socket is the connection's; those before it are of dials nats.js gave up on, such as a TLS handshake that stalled.
      destroyAll(sockets.slice(0, -1));
      void connection.closed().then(() => destroyAll(sockets));
      logger?.info({ servers: where }, 'connected to NATS');
      return { key: clientKey(servers), connection, jetstream: connection.jetstream() };
    } catch (error) {
      const why = error instanceof NatsPublishError ? error.message : describe(error, tlsRequiredBy);
      // How the provider reaches a server without TLS, for its logs only: the consumer can do nothing with it.
      const hint = tlsRequiredBy === 'Herald' && this.#options.requireTls === undefined && codeOf(error) === 'SERVER_OPT_NA' ? plaintextHint : undefined;
      logger?.warn({ servers: where, error: why, ...(hint ? { hint } : {}) }, 'cannot connect to NATS');
      throw new NatsPublishError(`cannot connect to NATS at ${where.join(', ')}: ${why}`);
    }
  }

  /**
   * Every address of every server, each with the name the server was listed by: its host names resolved before
   * `deadline` (ms since the epoch), and, unless private addresses are allowed, checked by the address guard, so that
   * the connection goes where the guard looked (no DNS rebinding).
   */
  async #addresses(urls: readonly URL[], deadline: number): Promise<ServerAddress[]> {
    const { allowPrivate = false } = this.#options;
    const lookup = destinationLookup(this.#options);
    const addresses: ServerAddress[] = [];
    for (const url of urls) {
      const name = url.hostname.replace(/^\[|\]$/g, '');
      const port = Number(url.port || 4222);
      const refused = allowPrivate ? undefined : refusedHost(name);
      if (refused) throw new NatsPublishError(refused.message);
      const found =
        isIP(name) !== 0
          ? [name]
          : await new Promise<string[]>((resolve, reject) =>
              lookupWithin(lookup, Math.max(1, deadline - Date.now()))(name, { all: true }, (error, list) =>
                error ? reject(error) : resolve((list as { address: string }[]).map(({ address }) => address)),
              ),
            );
      addresses.push(...found.map((address) => ({ name, address, port })));
    }
    return addresses;
  }

  /**
   * The TLS options of a connection: the pool's `tls`, and the certificate checked against the name a server was
   * listed by rather than the address dialled. When every server was listed by one name (one cluster name, several
   * addresses), that name is also sent as the server name (SNI), which Node.js checks the certificate against; a
   * connection sends one server name, so servers listed by different names get none, and the certificate of each
   * address is checked against the names that resolved to it (a listed address, against itself).
   */
  #tlsOptions(addresses: readonly ServerAddress[]): TlsOptions {
    const namesByAddress = new Map<string, string[]>();
    for (const { name, address } of addresses) namesByAddress.set(address, [...(namesByAddress.get(address) ?? []), name]);
    const names = [...new Set(addresses.map(({ name }) => name))];
    const oneName = names.length === 1 && isIP(names[0] as string) === 0 ? names[0] : undefined;
    const options: TlsConnectionOptions = {
      ...this.#options.tls,
      ...(oneName ? { servername: oneName } : {}),
      // Called with the server name when one was sent, else with the address dialled.
      checkServerIdentity: (host, certificate) => {
        const failures = (namesByAddress.get(host) ?? [host]).map((candidate) => checkServerIdentity(candidate, certificate));
        return failures.includes(undefined) ? undefined : failures[0];
      },
    };
    // nats.js hands its `tls` to tls.connect as they are, beyond the few options its type names.
    return options as TlsOptions;
  }
}

/** The key of a list of servers' connection in the pool. */
function clientKey(servers: readonly string[]): string {
  return servers.join('\n');
}

/** The servers of a {@link clientKey}, without their credentials. */
function shownServers(key: string): string[] {
  return key.split('\n').map(redactedServer);
}

/** The sockets nats.js opened for the connection whose nats.js calls run in it, in the order it opened them. */
const dialling = new AsyncLocalStorage<Socket[]>();
let watching = false;

/**
 * Watches the sockets nats.js opens for the pools' connections. nats.js leaves one open when it gives up on a dial whose
 * time is up (no INFO, a TLS handshake or a PONG that never comes): it closes only sockets it connected. The pool closes
 * them once the connect has settled.
 */
function watchNatsSockets(): void {
  if (watching) return;
  watching = true;
  subscribe('net.client.socket', (message) => {
    dialling.getStore()?.push((message as { socket: Socket }).socket);
  });
}

function destroyAll(sockets: readonly Socket[]): void {
  for (const socket of sockets) socket.destroy();
}

/** Why nats.js gave up on the dials of a connect: what each waits for, after its TCP connection, came too late. */
function notConnectedWithin(ms: number, tls: boolean): string {
  return `the connection was not made within ${ms} ms (TIMEOUT): the server's INFO, ${tls ? 'the TLS handshake, ' : ''}or its answer to CONNECT did not come in time`;
}

/** What Herald reads of a server's INFO. */
interface ServerInfo {
  tls_required?: unknown;
  tls_available?: unknown;
}

/**
 * The INFO of the first of `addresses` that sends one before `deadline`, each given an equal share of the time left;
 * rejects with the last one's failure when none does.
 */
async function firstInfo(addresses: readonly ServerAddress[], deadline: number): Promise<ServerInfo> {
  let failure: unknown;
  for (const [index, address] of addresses.entries()) {
    try {
      return await serverInfo(address, Math.max(1, Math.floor((deadline - Date.now()) / (addresses.length - index))));
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

/** More than any INFO: a peer that sends as much without ending a line is no NATS server. */
const longestInfo = 1_048_576;

/** The INFO of the NATS server at `address`, read within `timeout` ms on a connection of its own, closed then. */
function serverInfo({ address, port }: ServerAddress, timeout: number): Promise<ServerInfo> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: address, port });
    const where = isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
    const timer = setTimeout(() => {
      reject(new NatsPublishError(`${socket.connecting ? 'no TCP connection to' : 'no INFO from'} ${where} within ${timeout} ms (TIMEOUT)`));
      socket.destroy();
    }, timeout);
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\r\n');
      if (end === -1 && received.length < longestInfo) return;
      socket.destroy();
      const info = /^INFO\s+(.*)$/.exec(end === -1 ? '' : received.slice(0, end));
      if (!info) return reject(new NatsPublishError(`${where} is not a NATS server: it sent no INFO first`));
      try {
        resolve(JSON.parse(info[1] as string));
      } catch {
        reject(new NatsPublishError(`${where} is not a NATS server: its INFO is not JSON`));
      }
    });
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new NatsPublishError(`${where} closed the connection before its INFO`));
    });
  });
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

/** What the provider's operator is told when a server without TLS was refused because private targets are not allowed. */
const plaintextHint = allowPrivateHint('NATS without TLS');

/** The error in words; `tlsRequiredBy` is what required TLS of a server that offers none: `tls://` or Herald. */
function describe(error: unknown, tlsRequiredBy = 'tls://'): string {
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'CONNECTION_REFUSED' || code === 'ECONNREFUSED') return 'connection refused (CONNECTION_REFUSED)';
  if (code === 'SERVER_OPT_NA' && message === 'tls') return `the server does not offer TLS, which ${tlsRequiredBy} requires (SERVER_OPT_NA)`;
  const tlsReason = openSslReason(error);
  if (tlsReason !== undefined) {
    const refusedCertificate = code === 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' || code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED';
    return `${refusedCertificate ? 'the server refused the TLS handshake, wanting a client certificate it trusts: ' : ''}${tlsReason} (${code})`;
  }
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
