import { type PreparedConfig, type Subscription, ValidationError } from '@herald/core';
import { destinationUrl, pushConfigFields, refusedScheme, refusedUrlTarget } from '@herald/outbox';
import { z } from 'zod';
import { graceEnd, livePreviousSecrets } from './secret-rotation.js';
import { generateSecret, secretKey, secretPattern } from './webhook-signature.js';

/** Headers Herald sets itself; `config.headers` may not name them. */
const reservedHeaders = new Set([
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'herald-test',
  'content-type',
  'content-length',
  'content-encoding',
  'transfer-encoding',
  'host',
  'connection',
  'keep-alive',
  'upgrade',
  'expect',
  'te',
  'trailer',
]);

/** `whsec_` + base64 of 24 to 64 bytes. */
export const webhookSecret = z
  .string()
  .regex(secretPattern, 'must be "whsec_" followed by base64')
  .refine((secret) => {
    const length = secretKey(secret).length;
    return length >= 24 && length <= 64;
  }, 'must encode 24 to 64 bytes');

const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/, 'must be an HTTP header name')
  .refine((name) => !reservedHeaders.has(name.toLowerCase()), 'is set by Herald');

/** A webhook subscription's `config`, as validated on create and change. */
export const webhookConfigSchema = z.strictObject({
  url: destinationUrl(['https:', 'http:'], 'must be an absolute http(s) URL without credentials', { credentials: false }).describe(
    'Where events are POSTed: https, or http when private targets are allowed',
  ),
  secret: webhookSecret.optional().describe('`whsec_` + base64 of 24 to 64 bytes; generated when absent and shown once'),
  headers: z
    .record(headerName, z.string().max(1024).regex(/^[^\r\n\0]*$/, 'must be one line'))
    .refine((headers) => Object.keys(headers).length <= 20, 'at most 20 headers')
    .optional()
    .describe('Extra static headers sent with every delivery (at most 20; not those Herald sets)'),
  /** `rateLimit` (deliveries per second to this endpoint, across all nodes) and `ordered` (one at a time, in `seq` order). */
  ...pushConfigFields,
  // Managed by Herald: what a request gives for them is ignored (`readOnly`, as the API documents say).
  previousSecrets: z
    .array(z.strictObject({ secret: webhookSecret, expiresAt: z.iso.datetime() }))
    .max(10)
    .optional()
    .meta({ readOnly: true, description: 'Secrets replaced by a rotation, still signing until they expire' }),
  verifiedAt: z.iso.datetime().optional().meta({ readOnly: true, description: 'When the endpoint echoed the verification challenge for this URL' }),
  verifiedUrl: z
    .string()
    .max(2048)
    .optional()
    .meta({ readOnly: true, description: 'The URL whose endpoint echoed the challenge: with verification on, only it is sent anything' }),
  unverified: z.literal(true).optional().meta({ readOnly: true, description: 'The endpoint must echo a challenge before it gets deliveries' }),
});

export type WebhookConfig = z.infer<typeof webhookConfigSchema>;

/** A stored webhook config: the secret is always there. */
export type StoredWebhookConfig = WebhookConfig & { secret: string };

/** What the config checks depend on. */
export interface ConfigPolicy {
  allowPrivate: boolean;
  verifyEndpoints: boolean;
}

/** Checks what the schema cannot (scheme and literal address against the policy), and fills in the secret. */
export function prepareWebhookConfig(
  config: WebhookConfig,
  previous: Subscription<StoredWebhookConfig> | undefined,
  policy: ConfigPolicy,
): PreparedConfig<StoredWebhookConfig> {
  const url = new URL(config.url);
  if (!policy.allowPrivate) {
    const refused = refusedScheme(url, 'https') ?? refusedUrlTarget(url);
    if (refused) throw new ValidationError('The webhook URL is not allowed', [{ path: ['config', 'url'], message: refused.message }], undefined, refused);
  }
  const before = previous?.config;
  const generated = config.secret === undefined ? generateSecret() : undefined;
  const secret = config.secret ?? generated ?? '';
  const now = Date.now();
  const previousSecrets =
    before && before.secret === secret ? livePreviousSecrets(before, now) : [];
  const { previousSecrets: _previous, verifiedAt: _verified, verifiedUrl: _verifiedUrl, unverified: _unverified, ...rest } = config;
  // What verification proved holds for the URL it proved it for, and is only ever written by the verifier.
  const verified = before !== undefined && before.url === config.url && endpointVerified(before);
  const needsVerification = policy.verifyEndpoints && !verified;
  const stored: StoredWebhookConfig = {
    ...rest,
    secret,
    ...(previousSecrets.length > 0 ? { previousSecrets } : {}),
    ...(verified && before.verifiedAt !== undefined ? { verifiedAt: before.verifiedAt } : {}),
    ...(verified ? { verifiedUrl: config.url } : {}),
    ...(needsVerification ? { unverified: true as const } : {}),
  };
  return {
    config: stored,
    ...(generated ? { reveal: { secret: generated } } : {}),
    ...(needsVerification ? { status: 'pending' as const } : {}),
  };
}

/**
 * The config as the API shows it: no secrets, and `verification: "pending"` while the endpoint waits for
 * verification (when `verifying`, any endpoint that has not answered the challenge for its URL).
 */
export function publicWebhookConfig(stored: StoredWebhookConfig, verifying = false): Record<string, unknown> {
  const { secret: _secret, previousSecrets, unverified, verifiedUrl: _verifiedUrl, ...shown } = stored;
  const graceUntil = graceEnd(previousSecrets ?? []);
  const pending = unverified === true || (verifying && !endpointVerified(stored));
  return { ...shown, ...(graceUntil ? { previousSecretExpiresAt: graceUntil } : {}), ...(pending ? { verification: 'pending' } : {}) };
}

/** Whether the endpoint at the config's URL has echoed the verification challenge. */
export function endpointVerified(config: StoredWebhookConfig): boolean {
  return config.verifiedUrl !== undefined && config.verifiedUrl === config.url;
}
