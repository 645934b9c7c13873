import { definePushTransport, type PushTransport } from '@herald/outbox';
import { EndpointVerifier } from './endpoint-verifier.js';
import { HttpSender } from './http-sender.js';
import { endpointVerified, prepareWebhookConfig, publicWebhookConfig, type StoredWebhookConfig, type WebhookConfig, webhookConfigSchema } from './webhook-config.js';
import { type ResolvedWebhookOptions, resolveWebhookOptions, type WebhookOptions } from './webhook-options.js';
import { webhookOutcome } from './webhook-outcome.js';
import { testHeader, webhookHeaders, webhookTarget } from './webhook-request.js';
import { webhookRoutes } from './webhook-routes.js';

/** The webhook transport: a push transport whose subscriptions store a {@link StoredWebhookConfig}. */
export type WebhookTransport = PushTransport<StoredWebhookConfig, WebhookConfig>;

/**
 * Webhooks after Standard Webhooks: each matching event is POSTed, signed, to the subscription's
 * `config.url` from the durable outbox of `@herald/outbox`, retried on a schedule, with an SSRF guard and
 * opt-in endpoint verification. `createHerald({ transports: [webhook()] })`.
 */
export function webhook(options: WebhookOptions = {}): WebhookTransport {
  let resolved: ResolvedWebhookOptions | undefined;
  /** What sending takes, once started. */
  let http: { sender: HttpSender; timeout: number } | undefined;
  let verifier: EndpointVerifier | undefined;
  const settings = () => (resolved ??= resolveWebhookOptions(options, process.env));

  return definePushTransport({
    name: 'webhook',
    configSchema: webhookConfigSchema,
    options: (env) => (resolved = resolveWebhookOptions(options, env)),

    prepareConfig(config, previous) {
      const { allowPrivate, verifyEndpoints } = settings();
      const prepared = prepareWebhookConfig(config, previous, { allowPrivate, verifyEndpoints });
      if (prepared.config.unverified) verifier?.expect();
      return prepared;
    },

    publicConfig: (config) => publicWebhookConfig(config, settings().verifyEndpoints),

    // The one rule every fan-out, claim and send checks: whatever its status says, an endpoint is sent
    // nothing until it has answered the verification challenge for its current URL.
    deliverable: (subscription) => !settings().verifyEndpoints || endpointVerified(subscription.config),

    target: webhookTarget,

    async send({ event, body, subscription, trace, test }, target) {
      if (!http) throw new Error('the webhook transport is not started');
      const now = Date.now();
      const headers = webhookHeaders(target, subscription.config, event.id, body, now);
      if (trace?.traceparent) headers.traceparent = trace.traceparent;
      if (trace?.tracestate) headers.tracestate = trace.tracestate;
      if (test) headers[testHeader] = '1';
      const result = await http.sender.post(target.url, headers, body, http.timeout);
      return webhookOutcome(result, now);
    },

    start(context) {
      const current = settings();
      const sender = new HttpSender({
        allowPrivate: current.allowPrivate,
        keepBytes: current.responseBodyBytes,
        ...(current.lookup ? { lookup: current.lookup } : {}),
      });
      http = { sender, timeout: current.timeout };
      if (current.verifyEndpoints) verifier = new EndpointVerifier(context, sender, current.timeout);
      for (const route of webhookRoutes(context, verifier, current.rotationGracePeriod)) context.http.route(route);
      verifier?.start();
    },

    async stop() {
      await verifier?.stop();
      await http?.sender.close();
    },
  });
}
