import { type ConsumerSubscription, type RestClient, subscribeConsumer } from '@herald/testkit';

/** A webhook subscription {@link subscribeWebhook} made, with its signing secret. */
export interface WebhookSubscription extends ConsumerSubscription {
  secret: string;
}

/** {@link subscribeConsumer} for a webhook: the subscription's signing secret too. */
export async function subscribeWebhook(
  app: RestClient,
  config: Record<string, unknown>,
  options?: Parameters<typeof subscribeConsumer>[3],
): Promise<WebhookSubscription> {
  const made = await subscribeConsumer(app, 'webhook', config, options);
  return { ...made, secret: made.config.secret as string };
}
