import type { Logger } from '@herald/core';
import { definePushTransport, type LookupFunction, type PushOptions, type PushTransport, resolvePushOptions } from '@herald/outbox';
import { checkNatsConfig, type NatsConfig, natsConfigSchema, natsSubject, publicNatsConfig, serverList } from './nats-config.js';
import { NatsPool } from './nats-pool.js';

/** Options of {@link nats}: those of every push transport, and the NATS transport's own. */
export interface NatsOptions extends PushOptions {
  /** Resolves server host names; the address guard checks every address it returns. @default dns.lookup */
  lookup?: LookupFunction;
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
  let allowPrivate: boolean | undefined;
  let pool: NatsPool | undefined;
  let timeout = 15_000;
  let logger: Logger | undefined;
  const privateAllowed = () => (allowPrivate ??= resolvePushOptions('nats', options, process.env).allowPrivate);

  return definePushTransport({
    name: 'nats',
    configSchema: natsConfigSchema,
    options: (env) => {
      const resolved = resolvePushOptions('nats', options, env);
      allowPrivate = resolved.allowPrivate;
      timeout = resolved.timeout;
      return options;
    },

    prepareConfig: (config) => ({ config: checkNatsConfig(config, privateAllowed()) }),

    publicConfig: publicNatsConfig,

    target: (config) => ({ servers: serverList(config), subject: config.subject }),

    async send({ event, body }, { servers, subject }) {
      // Connections open when a subscription first needs one, so a server without NATS subscriptions connects nowhere.
      pool ??= new NatsPool({
        allowPrivate: privateAllowed(),
        connectTimeout: timeout,
        ...(options.lookup ? { lookup: options.lookup } : {}),
        ...(logger ? { logger } : {}),
      });
      try {
        await pool.publish(servers, {
          subject: natsSubject({ subject }, event.type),
          body: encoder.encode(body),
          msgID: event.id,
          seq: event.seq,
          deadline: Date.now() + timeout,
        });
        return { delivered: true };
      } catch (error) {
        return { delivered: false, error: error instanceof Error ? error.message : String(error) };
      }
    },

    start(context) {
      logger = context.logger.child({ transport: 'nats' });
    },

    async stop() {
      await pool?.close();
      pool = undefined;
    },
  });
}
