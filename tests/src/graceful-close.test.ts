import { Agent, type IncomingMessage, request } from 'node:http';
import { sse } from '@herald/sse';
import { memoryTransport, startTestApp } from '@herald/testkit';
import { describe, expect, it } from 'vitest';
import { envConfiguredNode, spawnHeraldNode } from '../../packages/testkit/src/herald-node.test-support.js';

const answer = (response: IncomingMessage) =>
  new Promise<{ status: number; connection: string | undefined }>((resolve) => {
    response.resume();
    response.on('end', () => resolve({ status: response.statusCode ?? 0, connection: response.headers.connection }));
  });

describe('close()', () => {
  it.each([
    ['a REST route', '/healthz', 200],
    // Answered before express (a stream's route): the 503 a reconnecting EventSource gets while the server stops.
    ['a stream', '/v1/stream?types=order.*', 503],
  ])('closes a keep-alive connection after its next answer, on %s, instead of waiting for the client to go quiet', async (_what, path, status) => {
    // Long enough that waiting for the client would time the test out.
    const app = await startTestApp([memoryTransport(), sse()], { shutdownTimeout: 120_000 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // A request under way when close() begins keeps its connection open past closeIdleConnections().
      const publish = request(`${app.baseUrl}/v1/events`, { method: 'POST', agent, headers: { authorization: `Bearer ${app.adminKey}`, 'content-type': 'application/json' } });
      const published = new Promise<IncomingMessage>((resolve, reject) => publish.on('response', resolve).on('error', reject));
      publish.write('{"type": "order.created", ');
      await new Promise((resolve) => setTimeout(resolve, 50));
      const closed = app.close();
      publish.end('"data": {"n": 1}}');
      const first = await answer(await published);
      expect(first).toEqual({ status: 202, connection: 'keep-alive' });

      // The client asks again on the same connection: the answer says it closes.
      const again = await new Promise<IncomingMessage>((resolve, reject) =>
        request(`${app.baseUrl}${path}`, { agent, headers: { authorization: `Bearer ${app.adminKey}` } }, resolve)
          .on('error', reject)
          .end(),
      );
      expect(await answer(again)).toEqual({ status, connection: 'close' });
      await closed;
    } finally {
      agent.destroy();
    }
  }, 30_000);
});

describe('a node that listens with handleSignals', () => {
  it('logs that it is stopping on SIGTERM, and that it stopped, as its last line, before it exits 0', async () => {
    const env = { HERALD_DATABASE: ':memory:', HERALD_ADMIN_KEY: 'graceful-close-test-admin-key-0123456789', HERALD_LOG_LEVEL: 'info' };
    const node = spawnHeraldNode(envConfiguredNode, [], env);
    const { baseUrl } = await node.started;
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
    node.kill('SIGTERM');
    expect(await node.exited).toBe(0);
    // By pino's time: at exit, pino writes what it holds at once, which may reach the pipe before a write under way.
    const byTime = [...node.logs].sort((a, b) => (a.time as number) - (b.time as number));
    expect(byTime.map((line) => line.msg).slice(-2)).toEqual(['stopping', 'stopped']);
  });
});
