import { connect, createServer, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { freePort } from './free-port.test-support.js';
import { slowLink, startTcpRelay } from './tcp-relay.test-support.js';
import { waitFor } from './wait-for.js';

/** A server that echoes what it gets, upper-cased, and keeps what it got. */
async function startEchoServer() {
  const sockets = new Set<Socket>();
  let received = '';
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
      socket.write(chunk.toString().toUpperCase());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { address: `127.0.0.1:${(server.address() as { port: number }).port}`, received: () => received, open: () => sockets.size };
}

/** A client of `address`, and what it got back. */
async function connectTo(address: string) {
  const [host, port] = address.split(':') as [string, string];
  const socket = connect(Number(port), host);
  onTestFinished(() => void socket.destroy());
  let received = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  socket.on('error', () => {});
  socket.once('close', () => (closed = true));
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return { socket, received: () => received, closed: () => closed };
}

describe('startTcpRelay', () => {
  it('relays both ways and counts the connections it took and those open; one side closing closes the other', async () => {
    const echo = await startEchoServer();
    const relay = await startTcpRelay(echo.address);
    onTestFinished(() => relay.close());
    const first = await connectTo(relay.address);
    const second = await connectTo(relay.address);
    first.socket.write('one');
    second.socket.write('two');
    await waitFor(() => first.received() === 'ONE' && second.received() === 'TWO', 'the echoes');
    expect([relay.connections(), relay.open().length, echo.open()]).toEqual([2, 2, 2]);
    first.socket.end();
    await waitFor(() => relay.open().length === 1 && echo.open() === 1, 'the first connection closed on both sides');
    expect(relay.connections()).toBe(2);
  });

  it("holds what the server sends on the connections open now while the client's bytes go on reaching it, and passes it on when released", async () => {
    const echo = await startEchoServer();
    const relay = await startTcpRelay(echo.address);
    onTestFinished(() => relay.close());
    const held = await connectTo(relay.address);
    relay.hold('server-to-client');
    const later = await connectTo(relay.address);
    held.socket.write('a');
    held.socket.write('b');
    later.socket.write('c');
    await waitFor(() => echo.received().length === 3 && later.received() === 'C', 'the bytes at the server, and the later connection relayed in full');
    const [connection] = relay.open();
    await waitFor(() => connection?.held('server-to-client') === 2, 'the echoes held');
    expect([held.received(), connection?.held('client-to-server')]).toEqual(['', 0]);
    relay.release();
    await waitFor(() => held.received() === 'AB', 'the echoes released');
    held.socket.write('d');
    await waitFor(() => held.received() === 'ABD', 'the connection relaying again');
  });

  it("holds both ways unless told one, and a hook sees each chunk and may drop it or hold its connection's answers", async () => {
    const echo = await startEchoServer();
    let losing = false;
    const seen: string[] = [];
    const relay = await startTcpRelay(echo.address, {
      onConnection: (connection) => ({
        fromClient(chunk) {
          seen.push(chunk.toString());
          if (losing) return 'drop';
          if (chunk.toString() === 'stall') connection.hold('server-to-client');
          return undefined;
        },
      }),
    });
    onTestFinished(() => relay.close());
    const client = await connectTo(relay.address);
    losing = true;
    client.socket.write('lost');
    await waitFor(() => seen.length === 1, 'the chunk seen');
    losing = false;
    client.socket.write('stall');
    await waitFor(() => echo.received() === 'stall', 'the chunk that stalls the connection at the server');
    await waitFor(() => relay.open()[0]?.held('server-to-client') === 5, 'its echo held');
    relay.release();
    relay.hold();
    client.socket.write('both');
    await waitFor(() => relay.open()[0]?.held('client-to-server') === 4, 'the chunk held on its way to the server');
    expect([echo.received(), client.received()]).toEqual(['stall', 'STALL']);
    relay.release();
    await waitFor(() => client.received() === 'STALLBOTH', 'the chunk at the server, and its echo');
    expect(seen).toEqual(['lost', 'stall', 'both']);
  });

  it('drops its connections and goes on listening; cut, it refuses connections until it resumes', async () => {
    const echo = await startEchoServer();
    const relay = await startTcpRelay(echo.address, { port: await freePort() });
    onTestFinished(() => relay.close());
    const dropped = await connectTo(relay.address);
    relay.drop();
    await waitFor(() => dropped.closed() && echo.open() === 0, 'the connection cut on both sides');
    const after = await connectTo(relay.address);
    after.socket.write('x');
    await waitFor(() => after.received() === 'X', 'a connection after the drop relayed');
    await relay.cut();
    await waitFor(() => after.closed(), 'the connection cut');
    await expect(connectTo(relay.address)).rejects.toThrow(/ECONNREFUSED/);
    await relay.resume();
    const resumed = await connectTo(relay.address);
    resumed.socket.write('y');
    await waitFor(() => resumed.received() === 'Y', 'a connection after the resume relayed');
    expect(relay.connections()).toBe(3);
  });

  it('answers a client what it is told to when the target refuses the connection, then closes it', async () => {
    const relay = await startTcpRelay(`127.0.0.1:${await freePort()}`, { unreachable: 'HTTP/1.1 502 Bad Gateway\r\n\r\n' });
    onTestFinished(() => relay.close());
    const client = await connectTo(relay.address);
    await waitFor(() => client.closed(), 'the connection closed');
    expect(client.received()).toBe('HTTP/1.1 502 Bad Gateway\r\n\r\n');
  });

  it('over a slowLink, passes what the server sends latency ms late, and what came meanwhile with it', async () => {
    const echo = await startEchoServer();
    const relay = await startTcpRelay(echo.address, { onConnection: slowLink(400) });
    onTestFinished(() => relay.close());
    const client = await connectTo(relay.address);
    const sent = Date.now();
    client.socket.write('one');
    await waitFor(() => echo.received() === 'one', 'the chunk at the server');
    client.socket.write('two');
    await waitFor(() => echo.received() === 'onetwo', 'the second chunk at the server, at once');
    expect(client.received()).toBe('');
    await waitFor(() => client.received() === 'ONETWO', 'both echoes, together', 2_000);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(400);
  });
});
