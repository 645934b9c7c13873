import { createHmac, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  verificationChallenge,
  verifyWebhook,
  WebhookHeaderError,
  WebhookPayloadError,
  WebhookSignatureError,
  WebhookTimestampError,
  WebhookVerificationError,
} from './webhook-verify.js';

/** The reference vector of the Standard Webhooks specification. */
const reference = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  headers: {
    'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    'webhook-timestamp': '1614265330',
    'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  },
  body: '{"test": 2432232314}',
  now: 1614265330 * 1000,
};

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/** Signs with the independent standardwebhooks package. */
function signed(secret: string, body: string, at = new Date(), id = `evt_${randomBytes(4).toString('hex')}`) {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, body),
  };
}

describe('verifyWebhook', () => {
  it('accepts the reference test vector', async () => {
    expect(await verifyWebhook(reference.secret, reference.body, reference.headers, { now: reference.now })).toEqual({ test: 2432232314 });
  });

  it('accepts what standardwebhooks signs, from a string, bytes or an ArrayBuffer, with any kind of headers', async () => {
    const secret = newSecret();
    const body = JSON.stringify({ id: 'evt_1', type: 'order.created', data: { note: 'ünïcødé ✓' } });
    const headers = signed(secret, body);
    const bytes = new TextEncoder().encode(body);
    expect(await verifyWebhook(secret, body, headers)).toEqual(JSON.parse(body));
    expect(await verifyWebhook(secret, bytes, new Headers(headers))).toEqual(JSON.parse(body));
    expect(await verifyWebhook(secret, bytes.buffer, { 'Webhook-Id': headers['webhook-id'], 'WEBHOOK-TIMESTAMP': headers['webhook-timestamp'], 'webhook-signature': [headers['webhook-signature']] })).toEqual(JSON.parse(body));
  });

  it('accepts any one of several signatures and of several secrets (a rotation)', async () => {
    const [oldSecret, newOne] = [newSecret(), newSecret()];
    const body = '{"n":1}';
    const headers = signed(newOne, body);
    const other = signed(oldSecret, body, new Date(), headers['webhook-id']);
    const both = { ...headers, 'webhook-signature': `v1,${'A'.repeat(43)}= v2,xyz ${other['webhook-signature']} ${headers['webhook-signature']}` };
    expect(await verifyWebhook(oldSecret, body, both)).toEqual({ n: 1 });
    expect(await verifyWebhook(newOne, body, both)).toEqual({ n: 1 });
    expect(await verifyWebhook([newSecret(), oldSecret], body, other)).toEqual({ n: 1 });
  });

  it('throws WebhookSignatureError for a changed body, a re-serialised body, another secret or a forged signature', async () => {
    const secret = newSecret();
    const body = '{"b": 2, "a": 1}';
    const headers = signed(secret, body);
    for (const [what, attempt] of [
      ['changed body', () => verifyWebhook(secret, '{"b": 2, "a": 3}', headers)],
      ['re-serialised body', () => verifyWebhook(secret, JSON.stringify(JSON.parse(body)), headers)],
      ['another secret', () => verifyWebhook(newSecret(), body, headers)],
      ['forged signature', () => verifyWebhook(secret, body, { ...headers, 'webhook-signature': `v1,${createHmac('sha256', 'guess').update(body).digest('base64')}` })],
      ['no v1 signature', () => verifyWebhook(secret, body, { ...headers, 'webhook-signature': 'v1a,abc' })],
      ['changed id', () => verifyWebhook(secret, body, { ...headers, 'webhook-id': 'evt_other' })],
    ] as const) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error, what).toBeInstanceOf(WebhookSignatureError);
      expect(error, what).toBeInstanceOf(WebhookVerificationError);
      expect((error as WebhookSignatureError).code).toBe('invalid-signature');
    }
  });

  it('throws WebhookTimestampError when the timestamp is more than 5 minutes off, either way', async () => {
    const secret = newSecret();
    const body = '{}';
    const now = Date.now();
    expect(await verifyWebhook(secret, body, signed(secret, body, new Date(now - 299_000)), { now })).toEqual({});
    expect(await verifyWebhook(secret, body, signed(secret, body, new Date(now + 299_000)), { now })).toEqual({});
    const old = await verifyWebhook(secret, body, signed(secret, body, new Date(now - 301_000)), { now }).catch((e: unknown) => e);
    expect(old).toBeInstanceOf(WebhookTimestampError);
    expect(old).toMatchObject({ code: 'timestamp-too-old', now: Math.floor(now / 1000) });
    const ahead = await verifyWebhook(secret, body, signed(secret, body, new Date(now + 301_000)), { now }).catch((e: unknown) => e);
    expect(ahead).toMatchObject({ name: 'WebhookTimestampError', code: 'timestamp-too-new' });
    // The tolerance is an option.
    expect(await verifyWebhook(secret, body, signed(secret, body, new Date(now - 600_000)), { now, tolerance: 900 })).toEqual({});
    // The reference vector is years old.
    await expect(verifyWebhook(reference.secret, reference.body, reference.headers)).rejects.toBeInstanceOf(WebhookTimestampError);
  });

  it('throws WebhookHeaderError for missing or malformed headers, and WebhookPayloadError for a body that is not JSON', async () => {
    const secret = newSecret();
    const headers = signed(secret, 'not json');
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const) {
      const { [name]: _dropped, ...rest } = headers;
      await expect(verifyWebhook(secret, 'not json', rest), name).rejects.toMatchObject({ name: 'WebhookHeaderError', code: 'missing-header' });
    }
    await expect(verifyWebhook(secret, 'not json', { ...headers, 'webhook-timestamp': '12.5' })).rejects.toBeInstanceOf(WebhookHeaderError);
    await expect(verifyWebhook(secret, 'not json', headers)).rejects.toBeInstanceOf(WebhookPayloadError);
    await expect(verifyWebhook('whsec_***', 'not json', headers)).rejects.toMatchObject({ code: 'invalid-secret' });
  });

  it('recognises an endpoint verification challenge', () => {
    expect(verificationChallenge({ type: 'herald.endpoint.verification', data: { challenge: 'abc' } })).toBe('abc');
    expect(verificationChallenge({ type: 'order.created', data: { challenge: 'abc' } })).toBeUndefined();
    expect(verificationChallenge('herald.endpoint.verification')).toBeUndefined();
  });
});
