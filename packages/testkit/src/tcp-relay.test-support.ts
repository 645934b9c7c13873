import { connect, createServer, type Socket } from 'node:net';

/** A way through a {@link TcpRelay}: what the client sends, or what the server sends back. */
export type RelayDirection = 'client-to-server' | 'server-to-client';

/** One connection through a {@link TcpRelay}: a client's, and the relay's own to the target. */
export interface RelayedConnection {
  /**
   * Holds what goes `direction` (both ways unless given) from now on, until {@link release}: the TCP connection stays
   * up and what is sent on it is read, but none of it passes on, as over a network that stalls or to a server that hangs.
   */
  hold(direction?: RelayDirection): void;
  /** Passes on what it held, each way in one write, and goes on relaying. */
  release(): void;
  /** How many bytes it holds on the way `direction`. */
  held(direction: RelayDirection): number;
}

/** What sees a connection's bytes as they come, before they are passed on or held. */
export interface RelayHooks {
  /** Sees each chunk the client sends: `'drop'` loses it, as a lossy network would. */
  fromClient?(chunk: Buffer): 'drop' | undefined;
  /** Sees each chunk the server sends: `'drop'` loses it. */
  fromServer?(chunk: Buffer): 'drop' | undefined;
}

export interface TcpRelayOptions {
  /** The address it listens on. @default '127.0.0.1' */
  host?: string;
  /** The port it listens on. @default 0 (an ephemeral port) */
  port?: number;
  /** Called with each connection as the relay takes it: the hooks it returns see that connection's bytes. */
  onConnection?(connection: RelayedConnection): RelayHooks | undefined;
  /** What it sends a client before closing its connection when the target refused the relay's, e.g. an HTTP 502 as a reverse proxy answers. @default nothing: the connection just closes */
  unreachable?: string;
}

/** A TCP relay of a test's own to a server: what it carries, it can cut, hold, or lose, to make the server seem away or slow. */
export interface TcpRelay {
  /** `host:port` it listens on. */
  address: string;
  /** How many connections it took. */
  connections(): number;
  /** The connections open now: those whose client has not closed. */
  open(): RelayedConnection[];
  /** Holds what goes `direction` (both ways unless given) on the connections open now; those made after are relayed in full. */
  hold(direction?: RelayDirection): void;
  /** Passes on what every connection held, and goes on relaying. */
  release(): void;
  /** Cuts every connection through it, and goes on listening. */
  drop(): void;
  /** Cuts every connection through it and stops listening: connections are refused until {@link resume}. */
  cut(): Promise<void>;
  /** Listens again, on the same address. */
  resume(): Promise<void>;
  close(): Promise<void>;
}

/** Relays connections to `target` (`host:port`), seen, held or lost as `options` say. */
export async function startTcpRelay(target: string, { host = '127.0.0.1', port = 0, onConnection, unreachable }: TcpRelayOptions = {}): Promise<TcpRelay> {
  const [targetHost, targetPort] = target.split(':') as [string, string];
  const sockets = new Set<Socket>();
  const open = new Set<RelayedConnection>();
  let connections = 0;
  const server = createServer((client) => {
    connections += 1;
    const upstream = connect(Number(targetPort), targetHost);
    const toward: Record<RelayDirection, Socket> = { 'client-to-server': upstream, 'server-to-client': client };
    /** What it holds, by the socket it is on its way to. */
    const held = new Map<Socket, Buffer[]>();
    const connection: RelayedConnection = {
      hold(direction) {
        for (const to of direction ? [toward[direction]] : [upstream, client]) if (!held.has(to)) held.set(to, []);
      },
      release() {
        for (const [to, chunks] of held) to.write(Buffer.concat(chunks));
        held.clear();
      },
      held: (direction) => Buffer.concat(held.get(toward[direction]) ?? []).length,
    };
    open.add(connection);
    client.once('close', () => open.delete(connection));
    const hooks = onConnection?.(connection);
    const relay = (from: Socket, to: Socket, hook: keyof RelayHooks) =>
      from.on('data', (chunk: Buffer) => {
        if (hooks?.[hook]?.(chunk) === 'drop') return;
        const holding = held.get(to);
        if (holding) holding.push(chunk);
        else if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
    relay(client, upstream, 'fromClient');
    relay(upstream, client, 'fromServer');
    let reached = false;
    upstream.once('connect', () => (reached = true));
    for (const [socket, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(socket);
      socket.on('error', () => {});
      // One side closed: the other ends once what was written to it has gone, as a pipe would end it.
      socket.once('close', () => {
        sockets.delete(socket);
        const destroy = () => other.destroy();
        if (socket === upstream && !reached && unreachable !== undefined) other.end(unreachable, destroy);
        else other.end(destroy);
      });
    }
  });
  const drop = () => {
    for (const socket of sockets) socket.destroy();
  };
  const listen = (at: number) => new Promise<void>((resolve, reject) => server.once('error', reject).listen(at, host, () => resolve()));
  await listen(port);
  const bound = (server.address() as { port: number }).port;
  const cut = () =>
    new Promise<void>((resolve) => {
      drop();
      if (server.listening) server.close(() => resolve());
      else resolve();
    });
  return {
    address: `${host}:${bound}`,
    connections: () => connections,
    open: () => [...open],
    hold: (direction) => {
      for (const connection of open) connection.hold(direction);
    },
    release: () => {
      for (const connection of open) connection.release();
    },
    drop,
    cut,
    resume: () => listen(bound),
    close: cut,
  };
}

/**
 * {@link TcpRelayOptions.onConnection} for a slow link: what the server sends reaches the client `latency` ms later
 * (what comes meanwhile, with it), as from a server that is healthy but far away.
 */
export function slowLink(latency: number): NonNullable<TcpRelayOptions['onConnection']> {
  return (connection) => {
    let holding = false;
    return {
      fromServer() {
        if (holding) return undefined;
        // Held before the relay passes the chunk on: it goes with what follows once the latency is over.
        holding = true;
        connection.hold('server-to-client');
        setTimeout(() => {
          holding = false;
          connection.release();
        }, latency);
        return undefined;
      },
    };
  };
}
