import type { RestClient } from '@herald/testkit';
import { expect } from 'vitest';

/** What {@link subscribeWebhook} made: the subscription's id, its secret, and the consumer's API key. */
export interface WebhookSubscription {
  id: string;
  secret: string;
  key: string;
}

/**
 * Creates a webhook subscription with `config` over REST, with `consumer`'s own API key, to `types`;
 * expects a 201.
 */
export async function subscribeWebhook(
  app: RestClient,
  config: Record<string, unknown>,
  { consumer = 'acme', types = ['**'] }: { consumer?: string; types?: string[] } = {},
): Promise<WebhookSubscription> {
  const key = await app.consumerKey(consumer);
  const { status, body } = await app.api('POST', '/v1/subscriptions', { transport: 'webhook', types, config }, key);
  expect(status, JSON.stringify(body)).toBe(201);
  return { id: body.id as string, secret: body.config.secret as string, key };
}
