import type { Logger, TlsSettings } from '@herald/core';
import { destinationLookup, type LookupFunction, LookupTimeoutError, openSslReason, refusedHost, SharedConnections, trackedLookup, waitCutShort } from '@herald/outbox';
import { type ChannelModel, type ConfirmChannel, connect, type MessageProperties, type Options, type SocketOptions } from 'amqplib';
import { redactedUrl } from './amqp-config.js';

/** Where one message goes. */
export interface AmqpDestination {
  /** The broker's URL, with its password. */
  url: string;
  exchange: string;
  routingKey: string;
}

export interface AmqpPoolOptions {
  /** Connect to loopback, private and link-local addresses too. @default false */
  allowPrivate?: boolean;
  /** Resolves broker host names; the address guard checks what it returns. @default dns.lookup */
  lookup?: LookupFunction;
  /** What TLS trusts and presents, for every `amqps://` connection. @default Node.js's trusted authorities, no client certificate */
  tls?: TlsSettings;
  /**
   * How long connecting may take in all (TCP, TLS and the AMQP handshake), in ms, and then how long opening a channel
   * may take (`channel.open`, `confirm.select` and the check of the exchange); then the connection's socket is closed.
   * @default 15000
   */
  connectTimeout?: number;
  /** Told when a connection opens, fails or closes, with the broker's URL without its password. @default silent */
  logger?: Logger;
}

/** What {@link AmqpPool.publish} is given besides the message. */
export interface PublishOptions {
  /** How long the publish may take in all, connecting included, in ms. @default no limit */
  timeout?: number;
}

/** What a publish is waiting for. */
type Stage = 'connect' | 'channel' | 'confirm';

/** A failed publish, in words that name the broker without its password. */
export class AmqpPublishError extends Error {
  override readonly name = 'AmqpPublishError';
}

/** A confirm channel, why the broker closed it once it has, and the messages it returned not yet confirmed. */
interface OpenChannel {
  channel: ConfirmChannel;
  closedBecause?: string;
  /** Why, by {@link returnKey}: the broker returns a `mandatory` message before it confirms it. */
  returned: Map<string, string[]>;
}

/** An open connection of the pool, and its confirm channels. */
interface PooledConnection {
  url: string;
  model: ChannelModel;
  /** Destroys the socket, with a reason: amqplib then closes the connection, and the pool drops it. */
  socket: AbortController;
  /** By exchange. */
  channels: SharedConnections<OpenChannel>;
  /** Ends a channel open still pending, by exchange, with the time it was given (ms): the connection closes, and the open fails. */
  openingChannels: Map<string, AbortController>;
  /** The connection emitted `close`. */
  closed: boolean;
  /** Its close, once begun. */
  closing?: Promise<void>;
}

/** What tells a returned message from the others on its channel (one exchange): its routing key and id. */
function returnKey(routingKey: string, messageId: unknown): string {
  return `${routingKey}\n${String(messageId ?? '')}`;
}

/**
 * Connections to AMQP brokers, one per URL, with one confirm channel per exchange on each. A connection
 * or channel that closes (a broker restart, a missing exchange) is dropped, and the next publish opens
 * a new one. A connection on which a confirm did not come within its publish's timeout, though the publish
 * waited for it at least half of that time, is retired: the next publish opens a new one, and it is closed
 * once the publishes still on it have settled (their confirms may yet come: a broker that is slow, not
 * wedged, loses none of them).
 */
export class AmqpPool {
  readonly #options: AmqpPoolOptions;
  /** By the broker's URL. */
  readonly #connections: SharedConnections<PooledConnection>;
  /** Ends a connect still pending, by the broker's URL, with the time it was given (ms): its socket closes, and it fails. */
  readonly #connecting = new Map<string, AbortController>();
  #closed = false;

  constructor(options: AmqpPoolOptions = {}) {
    this.#options = options;
    this.#connections = new SharedConnections(
      (connection, url, gone) =>
        connection.model.once('close', (error?: unknown) => {
          connection.closed = true;
          if (!this.#closed) this.#options.logger?.warn({ broker: redactedUrl(url), ...(error ? { error: reason(error, url) } : {}) }, 'the AMQP connection closed');
          gone();
        }),
      (retired) => void this.#shut(retired),
    );
  }

  /**
   * Publishes one message and resolves once the broker confirms it; rejects with an {@link AmqpPublishError},
   * also when the message is `mandatory` and the broker returned it, or when `timeout` (ms) passes first, saying
   * what it was waiting for: the connection, a channel, or the confirm. A publish that fails publishes nothing after.
   */
  async publish(destination: AmqpDestination, content: Buffer, properties: Options.Publish, { timeout }: PublishOptions = {}): Promise<void> {
    const started = Date.now();
    let stage: Stage = 'connect';
    /** How long connecting and opening the channel took, once the confirm is awaited (ms). */
    let setUp = 0;
    let connection: PooledConnection | undefined;
    let release: (() => void) | undefined;
    let settled = false;
    const publishing = (async () => {
      const taken = await this.#connection(destination.url);
      if (settled) return;
      connection = taken;
      release = this.#connections.sending(taken);
      stage = 'channel';
      const open = await taken.channels.get(destination.exchange, () => this.#openChannel(taken, destination));
      if (settled) return;
      stage = 'confirm';
      setUp = Date.now() - started;
      await confirmed(open, destination, content, properties);
    })();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      if (timeout === undefined) return;
      timer = setTimeout(() => {
        const pending = stage === 'connect' ? this.#connecting.get(destination.url) : stage === 'channel' ? connection?.openingChannels.get(destination.exchange) : undefined;
        // The connect or channel open then fails at once, closing its socket, and says why in the log and in `publishing`'s rejection.
        if (pending) return pending.abort(timeout);
        const why = timedOut(stage, destination, timeout);
        if (stage === 'confirm' && connection) {
          const cutShort = waitCutShort(`the broker did not confirm within ${timeout - setUp} ms`, { what: 'connecting and opening the channel', took: setUp }, timeout);
          if (cutShort) return reject(new AmqpPublishError(cutShort));
          this.#retire(connection, why);
        }
        reject(new AmqpPublishError(why));
      }, timeout);
    });
    return Promise.race([publishing, late]).finally(() => {
      settled = true;
      clearTimeout(timer);
      release?.();
    });
  }

  /**
   * Closes every connection, retired ones too; publishes still waiting for a confirm fail. A connection whose broker
   * does not answer the close within the connect timeout has its socket closed.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#connections.takeAll().map((connection) => connection.then((opened) => this.#shut(opened)).catch(() => {})));
  }

  /**
   * Takes `connection` out of the pool, since a confirm on it did not come in time (a broker or a proxy that stopped
   * answering, or a broker too slow): the next publish opens a new connection rather than waiting on this one.
   */
  #retire(connection: PooledConnection, why: string): void {
    if (this.#closed) return;
    const publishing = this.#connections.retire(connection.url, connection);
    if (publishing === undefined) return;
    this.#options.logger?.warn(
      { broker: redactedUrl(connection.url), error: why, publishing },
      'the AMQP broker did not confirm in time: new publishes go to a new connection, and this one closes once the publishes on it have settled',
    );
  }

  /** Closes `connection`, and its socket if the broker does not answer the close within the connect timeout. */
  #shut(connection: PooledConnection): Promise<void> {
    if (connection.closed) return Promise.resolve();
    connection.closing ??= (async () => {
      const { connectTimeout = 15_000 } = this.#options;
      const timer = setTimeout(() => connection.socket.abort('closed by Herald: the broker did not answer the close'), connectTimeout);
      try {
        // A connection whose socket closes while it waits for the broker's answer emits `close`, and its close() never settles.
        await Promise.race([connection.model.close(), new Promise((resolve) => connection.model.once('close', resolve))]);
      } catch {
        // It closed already.
      } finally {
        clearTimeout(timer);
      }
    })();
    return connection.closing;
  }

  /**
   * Opens the confirm channel of `destination`'s exchange on `connection` within the connect timeout, or sooner if a
   * publish waiting for it gives up. A broker that answers nothing in that time has a wedged connection: its socket is
   * closed, so that the pool drops it, and the next publish connects again rather than waiting on this connection.
   */
  async #openChannel(connection: PooledConnection, destination: AmqpDestination): Promise<OpenChannel> {
    const { connectTimeout = 15_000 } = this.#options;
    const deadline = new AbortController();
    connection.openingChannels.set(destination.exchange, deadline);
    const timer = setTimeout(() => deadline.abort(connectTimeout), connectTimeout);
    const late = new Promise<never>((_, reject) => deadline.signal.addEventListener('abort', () => reject(deadline.signal.reason), { once: true }));
    const opening = this.#setUpChannel(connection.model, destination);
    try {
      return await Promise.race([opening, late]);
    } catch (error) {
      if (!deadline.signal.aborted) throw error;
      // It fails once the socket is closed: nothing waits for it any more.
      opening.catch(() => {});
      const why = notOpenedWithin(Number(deadline.signal.reason));
      const broker = redactedUrl(destination.url);
      this.#options.logger?.warn({ broker, exchange: destination.exchange, error: why }, 'the AMQP broker did not open a channel: closing the connection');
      connection.socket.abort(`closed by Herald: ${why}`);
      throw new AmqpPublishError(`cannot open a channel to the exchange "${destination.exchange}" on ${broker}: ${why}`);
    } finally {
      clearTimeout(timer);
      connection.openingChannels.delete(destination.exchange);
    }
  }

  /** Opens a confirm channel on `model`, listens to what the broker says on it, and checks that the exchange exists. */
  async #setUpChannel(model: ChannelModel, destination: AmqpDestination): Promise<OpenChannel> {
    let channel: ConfirmChannel;
    try {
      channel = await model.createConfirmChannel();
    } catch (error) {
      throw new AmqpPublishError(`cannot open a channel to the exchange "${destination.exchange}" on ${redactedUrl(destination.url)}: ${reason(error, destination.url)}`);
    }
    const open: OpenChannel = { channel, returned: new Map() };
    // A channel the broker closes emits `error` with the reason, before its pending confirms fail with "channel closed".
    channel.on('error', (error: unknown) => {
      open.closedBecause = reason(error, destination.url);
    });
    channel.on('return', ({ fields, properties }: ReturnedMessage) => {
      const key = returnKey(fields.routingKey, properties.messageId);
      const whys = open.returned.get(key) ?? [];
      whys.push(returnedMessage(destination, fields));
      open.returned.set(key, whys);
    });
    if (destination.exchange !== '') {
      try {
        await channel.checkExchange(destination.exchange);
      } catch (error) {
        throw new AmqpPublishError(missingExchange(destination, open.closedBecause ?? reason(error, destination.url)));
      }
    }
    return open;
  }

  #connection(url: string): Promise<PooledConnection> {
    if (this.#closed) return Promise.reject(new AmqpPublishError('the AMQP transport is stopped'));
    return this.#connections.get(url, () => this.#connect(url));
  }

  async #connect(url: string): Promise<PooledConnection> {
    const { allowPrivate = false, tls, connectTimeout = 15_000 } = this.#options;
    const host = new URL(url).hostname;
    if (!allowPrivate) {
      // net.connect does not look literal addresses up, so the guard checks them here.
      const refused = refusedHost(host);
      if (refused) throw new AmqpPublishError(`cannot connect to ${redactedUrl(url)}: ${refused.message}`);
    }
    // Aborting destroys the socket, also in the middle of the TLS or AMQP handshake; amqplib's own `timeout` would
    // only end a socket that stays silent, and leave one that a broker dribbles bytes on open and its connect pending.
    const deadline = new AbortController();
    this.#connecting.set(url, deadline);
    const timer = setTimeout(() => deadline.abort(connectTimeout), connectTimeout);
    const names = trackedLookup(destinationLookup(this.#options));
    try {
      // amqplib hands these to tls.connect for amqps:// (with the host as the server name), to net.connect for amqp://;
      // their sockets take `signal`, which amqplib's types leave out.
      const socketOptions: SocketOptions & { signal: AbortSignal } = {
        ...tls,
        signal: deadline.signal,
        noDelay: true,
        lookup: names.lookup,
        clientProperties: { connection_name: 'herald' },
      };
      const model = await connect(url, socketOptions);
      // Without a listener an `error` event would throw; `close` follows it and drops the connection.
      model.on('error', () => {});
      this.#options.logger?.info({ broker: redactedUrl(url) }, 'connected to the AMQP broker');
      return {
        url,
        model,
        // The socket still takes the signal: aborting it later closes a connection the broker has wedged.
        socket: deadline,
        channels: new SharedConnections((open, _exchange, gone) => open.channel.once('close', gone)),
        openingChannels: new Map(),
        closed: false,
      };
    } catch (error) {
      const { hostname } = new URL(url);
      const unresolved = names.resolving(hostname) ? hostname : undefined;
      const why = deadline.signal.aborted ? notConnectedWithin(Number(deadline.signal.reason), unresolved) : reason(error, url);
      this.#options.logger?.warn({ broker: redactedUrl(url), error: why }, 'cannot connect to the AMQP broker');
      throw new AmqpPublishError(`cannot connect to ${redactedUrl(url)}: ${why}`);
    } finally {
      clearTimeout(timer);
      this.#connecting.delete(url);
    }
  }
}

/** Publishes on an open channel and resolves once the broker confirms. */
function confirmed(open: OpenChannel, destination: AmqpDestination, content: Buffer, properties: Options.Publish): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const failed = (error: unknown) => reject(new AmqpPublishError(publishFailure(destination, error, open.closedBecause)));
    const answered = (error: unknown) => {
      const returned = properties.mandatory ? takeReturned(open, returnKey(destination.routingKey, properties.messageId)) : undefined;
      if (error) failed(error);
      else if (returned !== undefined) reject(new AmqpPublishError(returned));
      else resolve();
    };
    try {
      open.channel.publish(destination.exchange, destination.routingKey, content, properties, answered);
    } catch (error) {
      failed(error);
    }
  });
}

/** Why a connect that `ms` ended failed: the name it was still looking up, `unresolved`, or else the connection. */
function notConnectedWithin(ms: number, unresolved?: string): string {
  if (unresolved !== undefined) return new LookupTimeoutError(unresolved, ms).reason;
  return `the connection was not made within ${ms} ms (ETIMEDOUT)`;
}

function notOpenedWithin(ms: number): string {
  return `the channel was not opened within ${ms} ms (ETIMEDOUT)`;
}

function timedOut(stage: Stage, destination: AmqpDestination, ms: number): string {
  const broker = redactedUrl(destination.url);
  if (stage === 'connect') return `cannot connect to ${broker}: ${notConnectedWithin(ms)}`;
  if (stage === 'channel') return `cannot open a channel to the exchange "${destination.exchange}" on ${broker}: ${notOpenedWithin(ms)}`;
  return `the broker did not confirm within ${ms} ms`;
}

/** A message the broker returned (`basic.return`), as amqplib emits it; its types have no such message. */
interface ReturnedMessage {
  fields: ReturnFields;
  properties: MessageProperties;
}

interface ReturnFields {
  replyCode: number;
  replyText: string;
  routingKey: string;
}

/** The reason the broker returned a message, or undefined when it returned none by that key. */
function takeReturned(open: OpenChannel, key: string): string | undefined {
  const whys = open.returned.get(key);
  const why = whys?.shift();
  if (whys?.length === 0) open.returned.delete(key);
  return why;
}

function returnedMessage(destination: AmqpDestination, { replyCode, replyText, routingKey }: ReturnFields): string {
  const noQueue =
    destination.exchange === ''
      ? `no queue is named "${routingKey}" on ${redactedUrl(destination.url)}`
      : `no queue is bound to the exchange "${destination.exchange}" for the routing key "${routingKey}" on ${redactedUrl(destination.url)}`;
  return `the broker returned the message: ${noQueue} (${replyCode} ${replyText})`;
}

function missingExchange(destination: AmqpDestination, why: string): string {
  return /NOT[-_]FOUND/.test(why) ? `the exchange "${destination.exchange}" does not exist on ${redactedUrl(destination.url)} (${why})` : why;
}

function publishFailure(destination: AmqpDestination, error: unknown, closedBecause: string | undefined): string {
  const message = error instanceof Error ? error.message : String(error);
  if (message === 'message nacked') return `the broker refused the message (nack) on ${redactedUrl(destination.url)}`;
  if (closedBecause) return `the broker closed the channel before confirming: ${missingExchange(destination, closedBecause)}`;
  return `the channel to ${redactedUrl(destination.url)} closed before the broker confirmed (${reason(error, destination.url)})`;
}

/** An error's message with a code when it has one, in words where amqplib's or OpenSSL's are obscure, and never the URL's password. */
function reason(error: unknown, url: string): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'ECONNREFUSED') return 'connection refused (ECONNREFUSED)';
  // The pool closed the socket, saying why (a wedged connection).
  if (code === 'ABORT_ERR' && error instanceof Error && typeof error.cause === 'string') return error.cause;
  if (code === 'ENOTFOUND') return 'the host name does not resolve (ENOTFOUND)';
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') return `the server on port ${port(url)} does not speak TLS: is it a plain amqp:// port? (${code})`;
  if (message.startsWith('Expected ConnectionOpenOk; got <ConnectionClose')) return vhostRefused(url);
  if (message === 'Socket closed abruptly during opening handshake' && new URL(url).protocol === 'amqp:') {
    return `the server closed the connection during the AMQP handshake: if port ${port(url)} takes TLS, use amqps://`;
  }
  let why = openSslReason(error) ?? message;
  if (code && !why.includes(code) && !/^\d+$/.test(code)) why = `${why} (${code})`;
  const password = new URL(url).password;
  if (password === '') return why;
  return why.split(password).join('***').split(decoded(password)).join('***');
}

function port(url: string): number {
  const { protocol, port } = new URL(url);
  return Number(port || (protocol === 'amqps:' ? 5671 : 5672));
}

/**
 * The broker closed the connection in answer to connection.open, which names the vhost. amqplib leaves the broker's
 * reason out of its error (RabbitMQ's is e.g. `530 NOT_ALLOWED - vhost novhost not found`), so this says what it can be.
 */
function vhostRefused(url: string): string {
  const { pathname, username, password } = new URL(url);
  const vhost = pathname.length > 1 ? decoded(pathname.slice(1)) : '/';
  // amqplib's defaults when the URL names no one.
  const user = username === '' && password === '' ? 'guest' : decoded(username);
  return `the broker refused to open the vhost "${vhost}": it does not exist, the user "${user}" may not use it, or a connection limit is reached`;
}

/** A part of the URL as amqplib sends it: percent-decoded, or as written when it is not percent-encoded as URLs are. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
