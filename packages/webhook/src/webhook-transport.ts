import type { TransportChannel } from '@herald/core';
import { definePushTransport, type PushTransport } from '@herald/outbox';
import { z } from 'zod';
import { EndpointVerifier } from './endpoint-verifier.js';
import { HttpSender } from './http-sender.js';
import { endpointVerified, prepareWebhookConfig, publicWebhookConfig, type StoredWebhookConfig, type WebhookConfig, webhookConfigSchema } from './webhook-config.js';
import { type ResolvedWebhookOptions, resolveWebhookOptions, type WebhookOptions } from './webhook-options.js';
import { webhookOutcome } from './webhook-outcome.js';
import { testHeader, webhookHeaders, webhookTarget } from './webhook-request.js';
import { webhookRoutes } from './webhook-routes.js';

/** The Standard Webhooks headers of every delivery, for `/asyncapi.json`. */
const signatureHeaders = z.object({
  'webhook-id': z.string().describe('The event id: the same on every retry, for deduplication'),
  'webhook-timestamp': z.string().describe('Unix seconds of this attempt'),
  'webhook-signature': z
    .string()
    .describe('`v1,<base64 HMAC-SHA256 of id.timestamp.body>`; several, space-separated, while a rotated secret is in its grace period'),
});

/** How `/asyncapi.json` describes the webhook transport: a POST to each subscription's endpoint. */
const webhookChannel: TransportChannel = {
  title: 'Webhooks (Standard Webhooks)',
  description:
    'A POST to each matching webhook subscription’s `config.url`, with the envelope as the JSON body, signed per Standard Webhooks. 2xx is delivered; anything else is retried on a schedule.',
  server: { protocol: 'https', host: '{endpoint}', description: 'The consumer’s endpoint: the `config.url` of a webhook subscription.' },
  variables: { endpoint: 'The host of the subscription’s URL' },
  events: { headers: signatureHeaders, contentType: 'application/json' },
  bindings: { operation: { http: { method: 'POST', bindingVersion: '0.3.0' } } },
};

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
    channel: webhookChannel,
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
