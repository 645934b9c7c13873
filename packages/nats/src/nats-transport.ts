import type { TlsSettings, TransportChannel } from '@herald/core';
import { definePushTransport, type LookupFunction, type PushOptions, type PushTransport, type ResolvedPushOptions, resolvePushOptions } from '@herald/outbox';
import { z } from 'zod';
import { checkNatsConfig, defaultNatsSubject, type NatsConfig, natsConfigSchema, natsSubject, publicNatsConfig, restoreNatsCredentials, serverList } from './nats-config.js';
import { NatsPool } from './nats-pool.js';

/** Options of {@link nats}: those of every push transport, and the NATS transport's own. */
export interface NatsOptions extends PushOptions {
  /** Resolves server host names; the address guard checks every address it returns. @default dns.lookup */
  lookup?: LookupFunction;
  /**
   * What TLS trusts and presents (see {@link TlsSettings}), for every TLS connection to the servers of this
   * transport's subscriptions: every connection unless private targets are allowed, and then those to `tls://`
   * servers and to servers that require or offer TLS. The servers are the subscriptions' own: every one of them
   * gets the same settings.
   * @default Node.js's trusted authorities, no client certificate
   */
  tls?: TlsSettings;
}

/** The NATS transport: a push transport whose subscriptions store a {@link NatsConfig}. */
export type NatsTransport = PushTransport<NatsConfig>;

const encoder = new TextEncoder();

/** The headers of every message, for `/asyncapi.json`. */
const natsHeaders = z.object({
  'Nats-Msg-Id': z.string().describe('The event’s id: the stream drops a second message with the same id (within its duplicate window)'),
  'Herald-Seq': z.string().describe('The event’s position in the log (`seq`), in decimal; `0` on a test event'),
  'Herald-Test': z.literal('1').optional().describe('`1` on a test event (`POST /v1/subscriptions/:id/test`); absent otherwise'),
});

/** How `/asyncapi.json` describes the NATS transport: a JetStream publish to a subject on each subscription's servers. */
const natsChannel: TransportChannel = {
  title: 'NATS JetStream',
  description:
    'One JetStream publish per event to the subscription’s subject, whose body is the envelope as JSON; delivered once the stream’s PubAck arrives. A JetStream stream must capture the subject: none, or no PubAck within the timeout, is a failed attempt, retried on the schedule.',
  server: {
    protocol: 'nats',
    host: '{server}',
    description: 'The consumer’s NATS cluster: a subscription’s `config.servers` (`host:port`, `nats://` or `tls://`), reached over TLS whatever the scheme (without it only when private targets are allowed).',
  },
  address: '{subject}',
  variables: {
    server: 'A server (host and port) of the subscription’s `config.servers`',
    subject: `The subscription’s \`config.subject\` (by default \`${defaultNatsSubject}\`), \`{type}\` replaced by the event’s type`,
  },
  events: { headers: natsHeaders, contentType: 'application/cloudevents+json' },
};

/**
 * Delivers events to NATS JetStream: each delivery is one JetStream publish to the subscription's
 * subject (`{type}` replaced by the event's type), with `Nats-Msg-Id` set to the event's id so that the
 * stream drops duplicates, and delivered once the PubAck arrives. No stream for the subject, or no
 * answer, is a failed attempt, retried on the schedule. `createHerald({ transports: [nats()] })`.
 */
export function nats(options: NatsOptions = {}): NatsTransport {
  let settings: ResolvedPushOptions | undefined;
  let pool: NatsPool | undefined;
  // A config may be checked before the transport starts: the options then come from the process's environment.
  const privateAllowed = () => (settings ?? resolvePushOptions('nats', options, process.env)).allowPrivate;

  return definePushTransport({
    name: 'nats',
    configSchema: natsConfigSchema,
    channel: natsChannel,
    options,

    // A PATCH may send the servers back as the API shows them: a masked credential stands for the stored one.
    prepareConfig: (config, previous) => ({ config: checkNatsConfig(restoreNatsCredentials(config, previous?.config), privateAllowed()) }),

    publicConfig: publicNatsConfig,

    target: (config) => ({ servers: serverList(config), subject: config.subject }),

    async send({ event, body, test }, { servers, subject }) {
      if (!pool || !settings) throw new Error('the nats transport is not started');
      const { timeout } = settings;
      try {
        await pool.publish(servers, {
          subject: natsSubject({ subject }, event.type),
          body: encoder.encode(body),
          msgID: event.id,
          seq: event.seq,
          ...(test ? { test } : {}),
          deadline: Date.now() + timeout,
        });
        return { delivered: true };
      } catch (error) {
        return { delivered: false, error: error instanceof Error ? error.message : String(error) };
      }
    },

    start(context) {
      settings = context.options;
      // Connections open when a subscription first needs one, so a server without NATS subscriptions connects nowhere.
      pool = new NatsPool({
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
