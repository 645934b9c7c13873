import type { ConnectionOptions } from 'node:tls';

/**
 * What a TLS connection to a broker or a store trusts and presents, as `tls.connect` takes them: `ca`, the
 * authorities (PEM) the server's certificate must be signed by, which replace those Node.js trusts
 * (`NODE_EXTRA_CA_CERTS` too; to add one: `[...tls.rootCertificates, pem]`); `cert` and `key`, a client
 * certificate and its key, for a server that requires one (mutual TLS).
 */
export type TlsSettings = Pick<ConnectionOptions, 'ca' | 'cert' | 'key'>;
