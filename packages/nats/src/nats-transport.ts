import type { TlsSettings } from '@herald/core';
import { definePushTransport, type LookupFunction, type PushOptions, type PushTransport, type ResolvedPushOptions, resolvePushOptions } from '@herald/outbox';
import { checkNatsConfig, type NatsConfig, natsConfigSchema, natsSubject, publicNatsConfig, restoreNatsCredentials, serverList } from './nats-config.js';
import { NatsPool } from './nats-pool.js';

/** Options of {@link nats}: those of every push transport, and the NATS transport's own. */
export interface NatsOptions extends PushOptions {
  /** Resolves server host names; the address guard checks every address it returns. @default dns.lookup */
  lookup?: LookupFunction;
  /**
   * What TLS trusts and presents (see {@link TlsSettings}), for every TLS connection to the servers of this
   * transport's subscriptions (`tls://` servers, and servers that require or offer TLS). The servers are the
   * subscriptions' own: every one of them gets the same settings.
   * @default Node.js's trusted authorities, no client certificate
   */
  tls?: TlsSettings;
}

/** The NATS transport: a push transport whose subscriptions store a {@link NatsConfig}. */
export type NatsTransport = PushTransport<NatsConfig>;

const encoder = new TextEncoder();

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
