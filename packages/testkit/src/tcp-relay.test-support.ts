import { connect, createServer, type Socket } from 'node:net';

/** A TCP relay of a test's own to a server: what it carries, it can cut, to make the server seem away. */
export interface TcpRelay {
  /** `host:port` it listens on. */
  address: string;
  /** How many connections it took. */
  connections(): number;
  /** Cuts every connection through it and stops listening: connections are refused until {@link resume}. */
  cut(): Promise<void>;
  /** Listens again, on the same address. */
  resume(): Promise<void>;
  close(): Promise<void>;
}

/** Relays connections to `target` (`host:port`) from `host`:`port` (an ephemeral port unless given). */
export async function startTcpRelay(target: string, { host = '127.0.0.1', port = 0 }: { host?: string; port?: number } = {}): Promise<TcpRelay> {
  const [targetHost, targetPort] = target.split(':') as [string, string];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((client) => {
    connections += 1;
    const upstream = connect(Number(targetPort), targetHost);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.once('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  const listen = (at: number) => new Promise<void>((resolve, reject) => server.once('error', reject).listen(at, host, () => resolve()));
  await listen(port);
  const bound = (server.address() as { port: number }).port;
  const cut = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      if (server.listening) server.close(() => resolve());
      else resolve();
    });
  return { address: `${host}:${bound}`, connections: () => connections, cut, resume: () => listen(bound), close: cut };
}
