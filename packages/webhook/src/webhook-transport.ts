import type { Subscription, Transport, TransportContext } from '@herald/core';
import { DeliveryEngine } from './delivery-engine.js';
import { EndpointVerifier } from './endpoint-verifier.js';
import { HttpSender } from './http-sender.js';
import { OutboxDispatcher } from './outbox-dispatcher.js';
import { ReplayRunner } from './replay-runner.js';
import { endpointVerified, prepareWebhookConfig, publicWebhookConfig, type StoredWebhookConfig, webhookConfigSchema } from './webhook-config.js';
import { type ResolvedWebhookOptions, resolveWebhookOptions, type WebhookOptions } from './webhook-options.js';
import { webhookRoutes } from './webhook-routes.js';

/** The webhook transport, with what it exposes beyond the Transport seam. */
export interface WebhookTransport extends Transport {
  readonly name: 'webhook';
  /** This node's worker id, as stored in the leases it takes. Set once started. */
  readonly workerId: string | undefined;
}

/**
 * Webhooks after Standard Webhooks: each matching event is POSTed, signed, to the subscription's
 * `config.url` from a durable outbox, retried on a schedule, with an SSRF guard and opt-in endpoint
 * verification. `createHerald({ transports: [webhook()] })`.
 */
export function webhook(options: WebhookOptions = {}): WebhookTransport {
  let resolved: ResolvedWebhookOptions | undefined;
  let sender: HttpSender | undefined;
  let engine: DeliveryEngine | undefined;
  let verifier: EndpointVerifier | undefined;
  let replays: ReplayRunner | undefined;
  let stopListening: (() => void) | undefined;
  const settings = () => (resolved ??= resolveWebhookOptions(options, process.env));

  return {
    name: 'webhook',
    configSchema: webhookConfigSchema,
    get workerId() {
      return engine?.worker;
    },

    prepareConfig(config, previous) {
      const { allowPrivate, verifyEndpoints } = settings();
      const prepared = prepareWebhookConfig(config, previous, { allowPrivate, verifyEndpoints });
      if ((prepared.config as StoredWebhookConfig).unverified) verifier?.expect();
      return prepared;
    },

    publicConfig: (config) => publicWebhookConfig(config, settings().verifyEndpoints),

    async start(context: TransportContext) {
      const current = (resolved = resolveWebhookOptions(options, context.env));
      sender = new HttpSender({
        allowPrivate: current.allowPrivate,
        keepBytes: current.responseBodyBytes,
        ...(current.lookup ? { lookup: current.lookup } : {}),
      });
      // The one rule every fan-out, claim and send checks: whatever its status says, an endpoint is sent
      // nothing until it has answered the verification challenge for its current URL.
      const deliverable = (subscription: Subscription) =>
        subscription.status === 'active' && (!current.verifyEndpoints || endpointVerified(subscription.config as StoredWebhookConfig));
      const dispatcher = new OutboxDispatcher({ transport: 'webhook', store: context.store, subscriptions: context.subscriptions, accepts: deliverable });
      const worker = (engine = new DeliveryEngine({ context, options: current, sender, dispatcher, deliverable }));
      if (current.verifyEndpoints) {
        verifier = new EndpointVerifier(context, sender, current.timeout, (subscription) => worker.refresh(subscription));
      }
      replays = new ReplayRunner(context, { wake: (subscription) => worker.wake(subscription) });
      for (const route of webhookRoutes(context, worker, replays, verifier, current.rotationGracePeriod)) context.http.route(route);

      // The bus hands over every event after `latest`, so the two must be taken together.
      const latest = context.bus.latest;
      stopListening = context.bus.onEvents((events) => {
        dispatcher.onEvents(events);
        worker.ring();
      });
      await dispatcher.init(latest);
      worker.start();
      verifier?.start();
    },

    async stop() {
      stopListening?.();
      await replays?.stop();
      await verifier?.stop();
      await engine?.stop();
      await sender?.close();
    },
  };
}
