import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HttpMount, UpgradeHandler } from '@herald/core';
import type { Router } from 'express';
import { type Authenticate, mountRoute } from './route-mount.js';

/** Routes and upgrade handlers that transports add, on the server's router and HTTP server. */
export class TransportMount implements HttpMount {
  readonly #router: Router;
  readonly #authenticate: Authenticate;
  readonly #upgrades = new Map<string, UpgradeHandler>();

  constructor(router: Router, authenticate: Authenticate) {
    this.#router = router;
    this.#authenticate = authenticate;
  }

  route: HttpMount['route'] = (definition) => mountRoute(this.#router, definition, this.#authenticate);

  upgrade(path: string, handler: UpgradeHandler): void {
    if (this.#upgrades.has(path)) throw new Error(`An upgrade handler for ${path} is already mounted`);
    this.#upgrades.set(path, handler);
  }

  /** The HTTP server's `upgrade` listener: hands the socket to the handler of its path, or answers 404. */
  handleUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const handler = this.#upgrades.get(path);
    if (handler) handler(request, socket, head);
    else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  };
}
