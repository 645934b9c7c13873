/** The machine's RabbitMQ, consumers on it made with amqplib, and a TLS endpoint in front of it, for the tests. */
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import type { HeraldEvent } from '@herald/core';
import { type Channel, type ChannelModel, type ConsumeMessage, connect } from 'amqplib';
import { slowLink, startTcpRelay, type TcpRelay, type TcpRelayOptions } from '../../testkit/src/tcp-relay.test-support.js';
import { startTlsProxy, type TlsProxy } from '../../webhook/src/test-tls.test-support.js';

export const brokerUrl = process.env.HERALD_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** A name no other test uses: exchanges and queues outlive a test that fails. */
export const uniqueName = (prefix: string) => `herald-test.${prefix}.${randomBytes(6).toString('hex')}`;

/** A TLS endpoint in front of the machine's RabbitMQ, and the `amqps://` URL (with {@link brokerUrl}'s credentials) that reaches it by the name its certificate is for. */
export async function startAmqpsProxy(): Promise<TlsProxy & { url: string }> {
  const broker = new URL(brokerUrl);
  const proxy = await startTlsProxy({ host: broker.hostname, port: Number(broker.port || 5672) });
  return Object.assign(proxy, { url: `amqps://${broker.username}:${broker.password}@localhost:${proxy.port}` });
}

/** A message as the consumer got it. */
export interface Received {
  event: HeraldEvent;
  message: ConsumeMessage;
}

/** An amqplib consumer of one queue bound to one topic exchange (`#`), both made for it. */
export interface QueueConsumer {
  exchange: string;
  queue: string;
  received: Received[];
  /** The events received, in arrival order. */
  readonly events: HeraldEvent[];
  /** The ids of the events received. */
  ids(): Set<string>;
  /**
   * Deletes the exchange, so that publishing to it fails, or makes it and binds the queue again. Made again,
   * it has an alternate exchange bound to the queue, so that a message published between the exchange's
   * return and its binding's is not dropped as unroutable (confirmed, yet no queue would get it).
   */
  removeExchange(removed: boolean): Promise<void>;
  /** Binds the queue to the exchange with one more pattern. */
  bind(pattern: string): Promise<void>;
  /** Connects again and goes on consuming, e.g. after the broker restarted. */
  reconnect(): Promise<void>;
  close(): Promise<void>;
}

export interface ConsumerOptions {
  /** A durable exchange and queue that survive a broker restart, rather than an exclusive queue. @default false */
  durable?: boolean;
  /** The binding's pattern. @default '#' */
  pattern?: string;
  /** Arguments of the queue (e.g. `x-max-length`). */
  queueArguments?: Record<string, unknown>;
}

export async function startConsumer({ durable = false, pattern = '#', queueArguments }: ConsumerOptions = {}): Promise<QueueConsumer> {
  const exchange = uniqueName('exchange');
  const queue = uniqueName('queue');
  const fallback = `${exchange}.fallback`;
  const received: Received[] = [];
  let model: ChannelModel;
  let channel: Channel;
  const declare = async () => {
    await channel.assertExchange(exchange, 'topic', { durable });
    await channel.assertQueue(queue, { durable, exclusive: !durable, ...(queueArguments ? { arguments: queueArguments } : {}) });
    await channel.bindQueue(queue, exchange, pattern);
  };
  const open = async () => {
    model = await connect(brokerUrl);
    model.on('error', () => {});
    channel = await model.createChannel();
    channel.on('error', () => {});
    await declare();
    await channel.consume(queue, (message) => {
      if (!message) return;
      received.push({ event: JSON.parse(message.content.toString('utf8')) as HeraldEvent, message });
      channel.ack(message);
    });
  };
  await open();
  return {
    exchange,
    queue,
    received,
    get events() {
      return received.map(({ event }) => event);
    },
    ids: () => new Set(received.map(({ event }) => event.id)),
    async removeExchange(removed) {
      if (removed) {
        await channel.deleteExchange(exchange);
        return;
      }
      await channel.assertExchange(fallback, 'fanout', { durable });
      await channel.bindQueue(queue, fallback, '');
      await channel.assertExchange(exchange, 'topic', { durable, alternateExchange: fallback });
      await channel.bindQueue(queue, exchange, pattern);
    },
    async bind(more) {
      await channel.bindQueue(queue, exchange, more);
    },
    async reconnect() {
      await model.close().catch(() => {});
      await open();
    },
    async close() {
      await channel.deleteExchange(exchange).catch(() => {});
      await channel.deleteExchange(fallback).catch(() => {});
      if (durable) await channel.deleteQueue(queue).catch(() => {});
      await model.close().catch(() => {});
    },
  };
}

/** A server that takes TCP connections and never completes the AMQP handshake, and the sockets it holds open. */
export interface Tarpit {
  port: number;
  /** How many connections it took. */
  readonly accepted: number;
  /** How many of them are still open. */
  readonly open: number;
  close(): Promise<void>;
}

/**
 * Starts a {@link Tarpit}. Silent, it says nothing; `dribble`, it starts a frame and sends it a byte every 100 ms,
 * so that a socket is never idle. It reads what it is sent, so that it sees a client close.
 */
export async function startTarpit({ dribble = false }: { dribble?: boolean } = {}): Promise<Tarpit> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.resume();
    socket.on('error', () => {});
    if (dribble) {
      // A method frame on channel 0 of 65,536 bytes: amqplib waits for all of it.
      socket.write(Buffer.from([1, 0, 0, 0, 1, 0, 0]));
      const timer = setInterval(() => socket.write(Buffer.from([0])), 100);
      socket.on('close', () => clearInterval(timer));
    }
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the tarpit has no port');
  return {
    port: address.port,
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A {@link TcpRelay} to the machine's RabbitMQ. */
export interface BrokerRelay extends TcpRelay {
  /** `amqp://` with {@link brokerUrl}'s credentials, through the relay. */
  url: string;
}

/** Starts a {@link BrokerRelay} to {@link brokerUrl}, whose connections `options` see, hold or lose. */
async function startBrokerRelay(options: TcpRelayOptions): Promise<BrokerRelay> {
  const broker = new URL(brokerUrl);
  const relay = await startTcpRelay(`${broker.hostname}:${broker.port || 5672}`, options);
  return Object.assign(relay, { url: `amqp://${broker.username}:${broker.password}@${relay.address}` });
}

/** A {@link BrokerRelay} that may stall the first connection on a method the client sends. */
export interface StallingRelay extends BrokerRelay {
  /** Whether the first connection has stalled: the client sent the method, and the broker's answers are held. */
  stalled(): boolean;
}

/** The `class-id` and `method-id` of the methods a {@link StallingRelay} can stall on (AMQP 0-9-1). */
const methods = { 'channel.open': [20, 10], 'basic.publish': [60, 40] } as const;

/** Reads the bytes a client sends, chunk by chunk, and tells whether the method of `class-id` and `method-id` came. */
function methodSeen([classId, methodId]: readonly [number, number]): (chunk: Buffer) => boolean {
  // The protocol header (8 bytes), then frames: type (1), channel (2), size (4), payload, end (1).
  let unread = Buffer.alloc(0);
  let headerRead = false;
  return (chunk) => {
    unread = Buffer.concat([unread, chunk]);
    if (!headerRead) {
      if (unread.length < 8) return false;
      unread = unread.subarray(8);
      headerRead = true;
    }
    while (unread.length >= 7 && unread.length >= 8 + unread.readUInt32BE(3)) {
      if (unread[0] === 1 && unread.length >= 11 && unread.readUInt16BE(7) === classId && unread.readUInt16BE(9) === methodId) return true;
      unread = unread.subarray(8 + unread.readUInt32BE(3));
    }
    return false;
  };
}

/**
 * Starts a {@link StallingRelay} to {@link brokerUrl}. With `stallOn`, it reads the first connection's client frames,
 * and from the client's `stallOn` method on holds what the broker sends: with `channel.open`, the connection's
 * handshake went through and the channel open is never answered; with `basic.publish`, the channel opened and the
 * message is never confirmed. The connections after it are relayed in full.
 */
export async function startStallingRelay(stallOn?: keyof typeof methods): Promise<StallingRelay> {
  let stalled = false;
  const relay = await startBrokerRelay({
    onConnection(connection) {
      if (stallOn === undefined || relay.connections() > 1) return undefined;
      const seen = methodSeen(methods[stallOn]);
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
 * Starts a {@link BrokerRelay} over a slow link: what the broker sends reaches the client `latency` ms later (what
 * comes meanwhile, with it). A broker that is healthy, but whose every answer, in the handshake, to each channel
 * method and each confirm, takes that long.
 */
export function startSlowRelay(latency: number): Promise<BrokerRelay> {
  return startBrokerRelay({ onConnection: slowLink(latency) });
}
