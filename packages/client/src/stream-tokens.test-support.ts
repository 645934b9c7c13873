import type { TestApp } from '@herald/testkit';

/**
 * Stream tokens of the least `ttl` (10 s) for `key`: `issue()` one; `renew`, a token function as clients take
 * it, which counts its calls (`renewals`); `expiresAt`, when the last token issued so far expires.
 */
export function shortLivedTokens(server: Pick<TestApp, 'api'>, key: string) {
  let expiresAt = 0;
  let renewals = 0;
  const issue = async () => {
    const { body } = await server.api('POST', '/v1/stream-tokens', { ttl: 10 }, key);
    expiresAt = Math.max(expiresAt, Date.parse(body.expiresAt));
    return body.token as string;
  };
  return {
    issue,
    renew: () => {
      renewals++;
      return issue();
    },
    get renewals() {
      return renewals;
    },
    get expiresAt() {
      return expiresAt;
    },
  };
}
