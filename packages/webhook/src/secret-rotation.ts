import type { StoredWebhookConfig } from './webhook-config.js';

/** A rotated secret and when it stops signing. */
type PreviousSecret = NonNullable<StoredWebhookConfig['previousSecrets']>[number];

/** The rotated secrets still in their grace period at `now`. */
export function livePreviousSecrets(config: StoredWebhookConfig, now: number): PreviousSecret[] {
  return (config.previousSecrets ?? []).filter((old) => Date.parse(old.expiresAt) > now);
}

/** When the last of `previousSecrets` stops signing; undefined when there is none. */
export function graceEnd(previousSecrets: readonly PreviousSecret[]): string | undefined {
  return previousSecrets.map((old) => old.expiresAt).sort().at(-1);
}
