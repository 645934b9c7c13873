import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { HeraldHandlers } from './herald-handlers.js';
import { refuseUpgrade } from './http-mount.js';

/** A `node:http` or `node:https` server. */
export type HttpServer = Server | HttpsServer;

/** Herald's handlers in front of a server: see {@link attachHandlers}. */
export interface Attachment {
  /**
   * Its Herald is stopping: the next attachment under the same base path takes its place, and so does one
   * already made after it. Until then it stays, and its Herald answers its own routes.
   */
  retire(): void;
  /** Takes the handlers off the server. */
  detach(): void;
}

interface Attached extends Attachment {
  basePath: string;
  retired: boolean;
}

/** The attachments of each server, in the order they were made. */
const attachments = new WeakMap<HttpServer, Set<Attached>>();
/** The `upgrade` listeners of attachments, which answer only the upgrades no other listener is there to take. */
const refusers = new WeakSet<object>();

/**
 * Puts `handlers` in front of every `request` and `upgrade` listener of `server`, those added before and
 * after alike: Herald's own requests and upgrades never reach them, every other one reaches them as it
 * came. Listeners cannot be put in front of listeners added later, and an app's own `ws` server made with
 * `{ server, path }` answers 400 to every upgrade of another path, Herald's included; so the server's
 * `emit` is wrapped instead. An earlier attachment under the same base path that was retired is detached
 * first: this one takes its place.
 */
export function attachHandlers(server: HttpServer, handlers: HeraldHandlers): Attachment {
  const all = attachments.get(server) ?? new Set<Attached>();
  attachments.set(server, all);
  const { basePath } = handlers;
  for (const earlier of all) if (earlier.basePath === basePath && earlier.retired) earlier.detach();

  const emit = server.emit as (this: HttpServer, event: string | symbol, ...args: unknown[]) => boolean;
  // Let go of once detached: a wrapper that another one wraps stays in the chain, and would keep its Herald alive.
  let taking: HeraldHandlers | undefined = handlers;
  const dispatch = function (this: HttpServer, event: string | symbol, ...args: unknown[]): boolean {
    if (taking && event === 'request') {
      const [request, response] = args as [IncomingMessage, ServerResponse];
      taking.handleRequest(request, response, () => emit.call(this, event, request, response));
      return true;
    }
    if (taking && event === 'upgrade' && taking.handleUpgrade(...(args as [IncomingMessage, Duplex, Buffer]))) return true;
    return emit.call(this, event, ...args);
  };
  // Node hands upgrades to `upgrade` listeners only when there is one; when there is none but these (one per
  // attachment), nobody takes them: the first of these refuses them.
  const refuseWhenAlone = (_request: IncomingMessage, socket: Duplex) => {
    const listeners = server.listeners('upgrade');
    if (listeners[0] === refuseWhenAlone && listeners.every((listener) => refusers.has(listener))) refuseUpgrade(socket);
  };
  refusers.add(refuseWhenAlone);
  server.emit = dispatch as HttpServer['emit'];
  server.on('upgrade', refuseWhenAlone);
  const attached: Attached = {
    basePath,
    retired: false,
    retire() {
      attached.retired = true;
      const made = [...all];
      if (made.slice(made.indexOf(attached) + 1).some((other) => other.basePath === basePath)) attached.detach();
    },
    detach() {
      taking = undefined;
      all.delete(attached);
      server.off('upgrade', refuseWhenAlone);
      if (server.emit === dispatch) server.emit = emit;
    },
  };
  all.add(attached);
  return attached;
}
