import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { bearerCredential, HeraldError, type Problem, SharedBatches, type StreamSession, StreamSessions, type Transport, type TransportContext } from '@herald/core';
import { WebSocketServer } from 'ws';
import { Connection, type ConnectionHost, HeraldWebSocket } from './websocket-connection.js';
import { resolveWebSocketOptions, type ResolvedWebSocketOptions, type WebSocketOptions } from './websocket-options.js';
import { CloseCode, EventFrames, frames, subprotocol } from './websocket-protocol.js';

/** Live numbers about the transport, for metrics and tests. */
export interface WebSocketStats {
  /** Open connections, authenticated or not. */
  connections: number;
  /** Subscriptions across every connection. */
  subscriptions: number;
  /** Bytes waiting to be sent, across every connection. */
  bufferedAmount: number;
  /** The largest `bufferedAmount` of one connection. */
  largestBufferedAmount: number;
}

/** The WebSocket transport: herald.v1 on `ws`, mounted at `/v1/ws`. */
export interface WebSocketTransport extends Transport {
  readonly name: 'websocket';
  stats(): WebSocketStats;
}

const problem = (status: number, code: string, detail: string): Problem => ({
  type: `urn:herald:problem:${code}`,
  title: STATUS_CODES[status] ?? 'Error',
  status,
  detail,
});

/** Answers an upgrade request with an HTTP error (problem+json, and `headers` such as `Retry-After`) instead of switching protocols. */
function refuseUpgrade(socket: Duplex, body: Problem, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const json = JSON.stringify(body);
  const extra = Object.entries(headers)
    .filter(([name]) => name.toLowerCase() !== 'connection')
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${body.status} ${STATUS_CODES[body.status] ?? 'Error'}\r\nConnection: close\r\n${extra}` +
      `Content-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
  );
}

function offeredProtocols(request: IncomingMessage): string[] {
  return (request.headers['sec-websocket-protocol'] ?? '').split(',').map((protocol) => protocol.trim());
}

/**
 * The WebSocket transport: consumers open `GET /v1/ws` with subprotocol `herald.v1`, authenticate,
 * and subscribe ad hoc (types and a resume position) or by attaching to a durable `websocket`
 * subscription whose cursor the server keeps. See docs/protocol/websocket.md.
 */
export function websocket(options: WebSocketOptions = {}): WebSocketTransport {
  const resolved: ResolvedWebSocketOptions = resolveWebSocketOptions(options);
  const connections = new Set<Connection>();
  /** The `subscribe`s under way, of open connections and of closed ones: `stop()` waits for them. */
  const subscribing = new Set<Promise<void>>();
  let server: WebSocketServer | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let host: ConnectionHost | undefined;
  let stopping = false;

  const upgrade = async (context: TransportContext, request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const ignore = () => {};
    socket.on('error', ignore);
    if (stopping || !server) return refuseUpgrade(socket, problem(503, 'unavailable', 'The server is stopping'));
    if (!offeredProtocols(request).includes(subprotocol)) {
      return refuseUpgrade(socket, problem(400, 'bad-subprotocol', `Sec-WebSocket-Protocol must offer ${subprotocol}`));
    }
    let session: StreamSession | undefined;
    const header = request.headers.authorization;
    if (header !== undefined) {
      try {
        session = (host as ConnectionHost).sessions.open(await context.authenticate(bearerCredential(header), request));
      } catch (error) {
        if (error instanceof HeraldError) return refuseUpgrade(socket, error.toProblem(), error.headers());
        context.logger.error({ err: error }, 'authenticating a websocket upgrade failed');
        return refuseUpgrade(socket, problem(503, 'unavailable', 'The credential could not be checked'));
      }
    }
    if (stopping || socket.destroyed) {
      session?.close();
      return refuseUpgrade(socket, problem(503, 'unavailable', 'The server is stopping'));
    }
    // ws gives up silently on a socket that went away meanwhile: its slot must come back all the same.
    let handedOver = false;
    if (session) socket.once('close', () => handedOver || session.close());
    server.handleUpgrade(request, socket, head, (ws) => {
      handedOver = true;
      socket.off('error', ignore);
      connections.add(new Connection(ws as HeraldWebSocket, host as ConnectionHost, session ?? request));
    });
  };

  return {
    name: 'websocket',
    kind: 'stream',
    channel: {
      title: `WebSocket (${subprotocol})`,
      description: `Authenticate with \`auth\` within ${resolved.authTimeout / 1000} s (or \`Authorization\` on the upgrade), then \`subscribe\` to types or a durable subscription; events arrive as \`event\` frames. Close codes: 4400 bad message, 4401 unauthorized, 4403 forbidden, 4408 auth timeout, 4409 duplicate subscription id, 4429 too slow, 1009 message too big (over \`maxPayload\`, ${resolved.maxPayload} bytes), 1001 going away.`,
      server: { protocol: 'ws', description: `The WebSocket transport; subprotocol \`${subprotocol}\`, JSON text frames.` },
      address: resolved.path,
      events: false,
      frames,
    },

    async start(context) {
      stopping = false;
      host = {
        context,
        options: resolved,
        frames: new EventFrames(),
        batches: new SharedBatches(),
        // Replay pages are small, so one page adds little to a send buffer that has just drained.
        sessions: new StreamSessions(context, { transport: 'websocket', cursorInterval: resolved.cursorFlushInterval, replayBatchSize: 100 }),
        release(connection) {
          connections.delete(connection);
        },
        hold(work) {
          subscribing.add(work);
          void work.finally(() => subscribing.delete(work));
        },
      };
      server = new WebSocketServer({
        noServer: true,
        maxPayload: resolved.maxPayload,
        perMessageDeflate: false,
        clientTracking: false,
        WebSocket: HeraldWebSocket,
        handleProtocols: (protocols) => (protocols.has(subprotocol) ? subprotocol : false),
      });
      context.http.upgrade(resolved.path, (request, socket, head) => {
        upgrade(context, request, socket, head).catch((error: unknown) => {
          context.logger.error({ err: error }, 'a websocket upgrade failed');
          socket.destroy();
        });
      });
      heartbeat = setInterval(() => {
        for (const connection of connections) connection.heartbeat();
      }, resolved.heartbeatInterval);
      heartbeat.unref();
    },

    async stop() {
      stopping = true;
      clearInterval(heartbeat);
      // Ending the sessions closes their connections with 1001; the drain closes the unauthenticated ones too.
      // It waits for the subscribes being looked up as well: the acks they hold move cursors once they end, and the
      // cursors are written after the drain.
      await host?.sessions.stop(async () => {
        const open = [...connections];
        for (const connection of open) connection.close(CloseCode.GoingAway, 'the server is stopping');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all([...open.map((connection) => connection.whenClosed()), ...subscribing]),
          new Promise((resolve) => (timer = setTimeout(resolve, resolved.stopTimeout))),
        ]);
        clearTimeout(timer);
        for (const connection of open) connection.ws.terminate();
        await Promise.all(open.map((connection) => connection.whenClosed()));
      });
      server?.close();
      server = undefined;
    },

    stats() {
      let subscriptions = 0;
      let bufferedAmount = 0;
      let largestBufferedAmount = 0;
      for (const connection of connections) {
        subscriptions += connection.subscriptionCount;
        bufferedAmount += connection.ws.bufferedAmount;
        largestBufferedAmount = Math.max(largestBufferedAmount, connection.ws.bufferedAmount);
      }
      return { connections: connections.size, subscriptions, bufferedAmount, largestBufferedAmount };
    },
  };
}
