// `@herald/webhook/signing`: what signs a webhook request and makes secrets, for tooling that sends or checks
// webhooks without running Herald. It imports node:crypto alone (a test keeps it so), none of the transport.
export type { StoredWebhookConfig } from './webhook-config.js';
export * from './webhook-request.js';
export * from './webhook-signature.js';
