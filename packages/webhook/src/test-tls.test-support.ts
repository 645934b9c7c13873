import { readFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { fileURLToPath } from 'node:url';

const testTlsFile = (name: string) => fileURLToPath(new URL(`../test-tls/${name}`, import.meta.url));

/**
 * The test certificate authority of `test-tls/` (see its README), and the certificate it signed for `localhost`,
 * `127.0.0.1` and `::1` with its key. Nothing outside the tests trusts them.
 */
export const testTls = { ca: testTlsFile('ca.pem'), cert: testTlsFile('localhost.pem'), key: testTlsFile('localhost-key.pem') };

export interface TlsProxy {
  /** The port it listens on, on 127.0.0.1, for TLS; reach it as `localhost`, the name its certificate is for. */
  port: number;
  /** The SNI server name of each connection whose handshake completed (`false`: the client sent none), in order. */
  readonly servernames: (string | false | null)[];
  close(): Promise<void>;
}

/**
 * Starts a TLS-terminating endpoint in front of a plain TCP server (a broker, Redis), as stunnel, a load balancer
 * or a managed service's TLS front is, on 127.0.0.1 and an ephemeral port: it presents {@link testTls}'s
 * certificate for `localhost`, `127.0.0.1` and `::1` and pipes each connection to `upstream`. It knows nothing of
 * the protocol it carries.
 */
export async function startTlsProxy(upstream: { host: string; port: number }): Promise<TlsProxy> {
  const sockets = new Set<Socket>();
  const servernames: TlsProxy['servernames'] = [];
  const server = createTlsServer({ cert: readFileSync(testTls.cert), key: readFileSync(testTls.key) }, (client) => {
    servernames.push(client.servername);
    const target = connectTcp(upstream.port, upstream.host);
    for (const [socket, other] of [
      [client, target],
      [target, client],
    ] as const) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.once('close', () => {
        sockets.delete(socket);
        other.destroy();
      });
    }
    client.pipe(target).pipe(client);
  });
  // A client that refuses the certificate ends its handshake: nothing to do here.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    servernames,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
