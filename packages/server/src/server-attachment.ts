import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { HeraldHandlers } from './herald-handlers.js';
import { refuseUpgrade } from './http-mount.js';

/** A `node:http` or `node:https` server. */
export type HttpServer = Server | HttpsServer;

/**
 * Puts `handlers` in front of every `request` and `upgrade` listener of `server`, those added before and
 * after alike: Herald's own requests and upgrades never reach them, every other one reaches them as it
 * came. Listeners cannot be put in front of listeners added later, and an app's own `ws` server made with
 * `{ server, path }` answers 400 to every upgrade of another path, Herald's included; so the server's
 * `emit` is wrapped instead. Returns the function that undoes it.
 */
export function attachHandlers(server: HttpServer, handlers: HeraldHandlers): () => void {
  const emit = server.emit as (this: HttpServer, event: string | symbol, ...args: unknown[]) => boolean;
  let attached = true;
  const dispatch = function (this: HttpServer, event: string | symbol, ...args: unknown[]): boolean {
    if (attached && event === 'request') {
      const [request, response] = args as [IncomingMessage, ServerResponse];
      handlers.handleRequest(request, response, () => emit.call(this, event, request, response));
      return true;
    }
    if (attached && event === 'upgrade' && handlers.handleUpgrade(...(args as [IncomingMessage, Duplex, Buffer]))) return true;
    return emit.call(this, event, ...args);
  };
  // Node hands upgrades to `upgrade` listeners only when there is one; when there is no other, nobody takes them.
  const refuseWhenAlone = (_request: IncomingMessage, socket: Duplex) => {
    if (server.listenerCount('upgrade') === 1) refuseUpgrade(socket);
  };
  server.emit = dispatch as HttpServer['emit'];
  server.on('upgrade', refuseWhenAlone);
  return () => {
    attached = false;
    server.off('upgrade', refuseWhenAlone);
    if (server.emit === dispatch) server.emit = emit;
  };
}
