import type { TlsSettings, TransportChannel } from '@herald/core';
import { definePushTransport, type LookupFunction, type PushOptions, type PushTransport, type ResolvedPushOptions, resolvePushOptions } from '@herald/outbox';
import { z } from 'zod';
import { type AmqpConfig, amqpConfigSchema, checkAmqpConfig, publicAmqpConfig, restoreAmqpPassword } from './amqp-config.js';
import { AmqpPool } from './amqp-pool.js';

/** Options of {@link amqp}: those of every push transport, and the AMQP transport's own. */
export interface AmqpOptions extends PushOptions {
  /** Resolves broker host names; the address guard checks every address it returns. @default dns.lookup */
  lookup?: LookupFunction;
  /**
   * What TLS trusts and presents (see {@link TlsSettings}), for every `amqps://` connection to the brokers of this
   * transport's subscriptions. The brokers are the subscriptions' own: every one of them gets the same settings.
   * @default Node.js's trusted authorities, no client certificate
   */
  tls?: TlsSettings;
}

/** The AMQP transport: a push transport whose subscriptions store an {@link AmqpConfig}. */
export type AmqpTransport = PushTransport<AmqpConfig>;

/** The content type of every message: the body is the event's envelope, a CloudEvent in JSON. */
export const amqpContentType = 'application/cloudevents+json';

/** The header that marks a test event (`POST /v1/subscriptions/:id/test`): `herald-test: 1`, as on a webhook. */
export const amqpTestHeader = 'herald-test';

/** The headers of every message, for `/asyncapi.json`. */
const amqpHeaders = z.object({
  'herald-seq': z.number().int().nonnegative().describe('The event’s position in the log (`seq`); 0 on a test event'),
  [amqpTestHeader]: z.literal(1).optional().describe('`1` on a test event (`POST /v1/subscriptions/:id/test`); absent otherwise'),
});

/** How `/asyncapi.json` describes the AMQP transport: a message to an exchange on each subscription's broker. */
const amqpChannel: TransportChannel = {
  title: 'AMQP 0-9-1 (RabbitMQ)',
  description: `One persistent message per event, published with publisher confirms to the subscription’s \`config.exchange\` (which Herald does not declare) on its broker, with the routing key \`config.routingKey\`, or else the event’s type. The body is the envelope as JSON; the properties: \`contentType\` \`${amqpContentType}\`, \`messageId\` the event’s id (the same on every retry: dedupe by it), \`type\` the event’s type, \`timestamp\` its time in seconds, \`deliveryMode\` 2 (persistent).`,
  server: {
    protocol: 'amqp',
    protocolVersion: '0-9-1',
    host: '{broker}',
    description: 'The consumer’s broker: a subscription’s `config.url` (`amqps://`; `amqp://` only where private targets are allowed).',
  },
  address: '{routingKey}',
  variables: { broker: 'The host (and port) of the subscription’s `config.url`', routingKey: 'The subscription’s `config.routingKey`; by default the event’s type' },
  events: { headers: amqpHeaders, contentType: amqpContentType },
  bindings: {
    channel: { amqp: { is: 'routingKey', exchange: {}, bindingVersion: '0.3.0' } },
    operation: { amqp: { deliveryMode: 2, timestamp: true, bindingVersion: '0.3.0' } },
  },
};

/**
 * Delivers events to RabbitMQ (or any AMQP 0-9-1 broker): each delivery is one persistent message,
 * published to the subscription's exchange with publisher confirms, and delivered once the broker
 * confirms it; a nack, a closed channel, a missing exchange, an unreachable broker or (for a `mandatory`
 * subscription) a message the broker returns is a failed attempt, retried on the schedule. `createHerald({ transports: [amqp()] })`.
 */
export function amqp(options: AmqpOptions = {}): AmqpTransport {
  let settings: ResolvedPushOptions | undefined;
  let pool: AmqpPool | undefined;
  // A config may be checked before the transport starts: the options then come from the process's environment.
  const privateAllowed = () => (settings ?? resolvePushOptions('amqp', options, process.env)).allowPrivate;

  return definePushTransport({
    name: 'amqp',
    configSchema: amqpConfigSchema,
    channel: amqpChannel,
    options,

    // A PATCH may send the URL back as the API shows it, without its password: the stored one stands for it.
    prepareConfig: (config, previous) => ({ config: checkAmqpConfig(restoreAmqpPassword(config, previous?.config), privateAllowed()) }),

    publicConfig: publicAmqpConfig,

    target: (config) => ({ url: config.url, exchange: config.exchange, routingKey: config.routingKey, mandatory: config.mandatory === true }),

    async send({ event, body, test }, { url, exchange, routingKey, mandatory }) {
      if (!pool || !settings) throw new Error('the amqp transport is not started');
      const headers: Record<string, number> = { 'herald-seq': event.seq };
      if (test) headers[amqpTestHeader] = 1;
      const properties = {
        persistent: true,
        contentType: amqpContentType,
        messageId: event.id,
        type: event.type,
        // Parsed, not cached by `publishedAt`: one message a delivery, as the outbox counts it.
        timestamp: Math.floor(Date.parse(event.time) / 1000),
        headers,
        mandatory,
      };
      try {
        await pool.publish({ url, exchange, routingKey: routingKey ?? event.type }, Buffer.from(body), properties, { timeout: settings.timeout });
        return { delivered: true };
      } catch (error) {
        return { delivered: false, error: error instanceof Error ? error.message : String(error) };
      }
    },

    start(context) {
      settings = context.options;
      // Connections open when a subscription first needs one, so a server without AMQP subscriptions connects nowhere.
      pool = new AmqpPool({
        allowPrivate: settings.allowPrivate,
        connectTimeout: settings.timeout,
        logger: context.logger,
        ...(options.lookup ? { lookup: options.lookup } : {}),
        ...(options.tls ? { tls: options.tls } : {}),
      });
    },

    async stop() {
      await pool?.close();
      pool = undefined;
    },
  });
}
