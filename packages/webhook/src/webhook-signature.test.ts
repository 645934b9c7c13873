import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import type { StoredWebhookConfig } from './webhook-config.js';
import { webhookRequest } from './webhook-request.js';
import { generateSecret, secretKey, signature, signedHeaders } from './webhook-signature.js';

/** The reference vector of the Standard Webhooks specification and its libraries. */
const reference = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

describe('Standard Webhooks signatures', () => {
  it('reproduces the reference test vector', () => {
    expect(signature(reference.secret, reference.id, reference.timestamp, reference.body)).toBe(reference.signature);
    // Libraries accept the secret without its prefix too.
    expect(signature(reference.secret.slice('whsec_'.length), reference.id, reference.timestamp, reference.body)).toBe(reference.signature);
  });

  it('matches the standardwebhooks package, which also verifies it', () => {
    const secret = generateSecret();
    const timestamp = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ id: 'evt_1', type: 'order.created', data: { total: 12.5, note: 'ünïcødé ✓' } });
    const ours = signature(secret, 'evt_1', timestamp, body);
    expect(ours).toBe(new Webhook(secret).sign('evt_1', new Date(timestamp * 1000), body));
    expect(new Webhook(secret).verify(body, signedHeaders([secret], 'evt_1', timestamp, body))).toEqual(JSON.parse(body));
  });

  it('signs with every secret, space-separated, and each alone verifies', () => {
    const [current, previous, stranger] = [generateSecret(), generateSecret(24), generateSecret(64)];
    const timestamp = Math.floor(Date.now() / 1000);
    const body = '{"n":1}';
    const headers = signedHeaders([current, previous], 'evt_2', timestamp, body);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(new Webhook(current).verify(body, headers)).toEqual({ n: 1 });
    expect(new Webhook(previous).verify(body, headers)).toEqual({ n: 1 });
    expect(() => new Webhook(stranger).verify(body, headers)).toThrow(/signature/i);
    expect(() => new Webhook(current).verify('{"n":2}', headers)).toThrow(/signature/i);
  });

  it('builds the request: static headers, then every secret still signing, each verifiable', () => {
    const [current, rotated, expired] = [generateSecret(), generateSecret(), generateSecret()];
    const now = Date.now();
    const config: StoredWebhookConfig = {
      url: 'https://hooks.example.com/in?tenant=7',
      secret: current,
      // Names in any case: a User-Agent replaces Herald's rather than going out beside it.
      headers: { 'X-Tenant': '7', 'User-Agent': 'acme-relay' },
      previousSecrets: [
        { secret: rotated, expiresAt: new Date(now + 60_000).toISOString() },
        { secret: expired, expiresAt: new Date(now - 1).toISOString() },
      ],
    };
    const body = '{"n":3}';
    const { url, headers } = webhookRequest(config, 'evt_3', body, now);
    expect(url.href).toBe(config.url);
    expect(headers).toMatchObject({ 'content-type': 'application/json', 'x-tenant': '7', 'user-agent': 'acme-relay', 'webhook-id': 'evt_3' });
    expect(Object.keys(headers).filter((name) => name.toLowerCase() === 'user-agent')).toEqual(['user-agent']);
    expect(headers['webhook-timestamp']).toBe(String(Math.floor(now / 1000)));
    expect(headers['webhook-signature']?.split(' ')).toHaveLength(2);
    expect(new Webhook(current).verify(body, headers)).toEqual({ n: 3 });
    expect(new Webhook(rotated).verify(body, headers)).toEqual({ n: 3 });
    expect(() => new Webhook(expired).verify(body, headers)).toThrow(/signature/i);
    // Past the rotated secret's grace period, only the current one signs.
    expect(webhookRequest(config, 'evt_3', body, now + 120_000).headers['webhook-signature']?.split(' ')).toHaveLength(1);
  });

  it('generates whsec_ secrets of 24 to 64 random bytes', () => {
    const secrets = new Set(Array.from({ length: 20 }, () => generateSecret()));
    expect(secrets.size).toBe(20);
    for (const secret of secrets) {
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
      expect(secretKey(secret)).toHaveLength(32);
    }
    expect(secretKey(generateSecret(24))).toHaveLength(24);
    expect(secretKey(generateSecret(64))).toHaveLength(64);
    expect(() => generateSecret(23)).toThrow(RangeError);
    expect(() => generateSecret(65)).toThrow(RangeError);
  });
});
