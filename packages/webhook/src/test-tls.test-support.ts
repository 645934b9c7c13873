import { fileURLToPath } from 'node:url';

const testTlsFile = (name: string) => fileURLToPath(new URL(`../test-tls/${name}`, import.meta.url));

/**
 * The test certificate authority of `test-tls/` (see its README), and the certificate it signed for `localhost`,
 * `127.0.0.1` and `::1` with its key. Nothing outside the tests trusts them.
 */
export const testTls = { ca: testTlsFile('ca.pem'), cert: testTlsFile('localhost.pem'), key: testTlsFile('localhost-key.pem') };
