import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HttpMount, PlainHandler, RouteDefinition, UpgradeHandler } from '@herald/core';
import type { Router } from 'express';
import type { RequestLimiter } from './rate-limiter.js';
import { type Authenticate, mountRoute } from './route-mount.js';

/** A route or upgrade path a transport added, for the generated API documents. */
export interface MountedRoute {
  transport: string;
  definition: RouteDefinition;
}

export interface MountedUpgrade {
  transport: string;
  path: string;
}

/** Told when a transport's connection (an upgraded socket, or a streaming response) opens (+1) or closes (-1). */
export type ConnectionCounter = (transport: string, delta: 1 | -1) => void;

/** Routes and upgrade handlers that transports add, on the server's router and HTTP server. */
export class TransportMount implements HttpMount {
  readonly #router: Router;
  readonly #authenticate: Authenticate;
  readonly #countConnection: ConnectionCounter;
  readonly #limiter: RequestLimiter | undefined;
  readonly #upgrades = new Map<string, UpgradeHandler>();
  readonly #upgradeOwners = new Map<string, string>();
  readonly #routes: MountedRoute[] = [];

  constructor(router: Router, authenticate: Authenticate, countConnection: ConnectionCounter = () => {}, limiter?: RequestLimiter) {
    this.#router = router;
    this.#authenticate = authenticate;
    this.#countConnection = countConnection;
    this.#limiter = limiter;
  }

  route: HttpMount['route'] = (definition) => this.#route(definition as RouteDefinition, '');

  /** Every route the transports added, in order. */
  get routes(): readonly MountedRoute[] {
    return this.#routes;
  }

  /** Every upgrade path the transports added. */
  get upgrades(): readonly MountedUpgrade[] {
    return [...this.#upgradeOwners].map(([path, transport]) => ({ path, transport }));
  }

  /** The mount one transport is given: what it adds is recorded, and its connections counted, under its name. */
  forTransport(transport: string): HttpMount {
    return {
      route: (definition) => this.#route(definition as RouteDefinition, transport),
      upgrade: (path, handler) => {
        this.upgrade(path, handler);
        this.#upgradeOwners.set(path, transport);
      },
      preflight: (path, handler) => this.preflight(path, handler),
    };
  }

  #route(definition: RouteDefinition, transport: string): void {
    this.#routes.push({ transport, definition });
    const count = this.#countConnection;
    mountRoute(
      this.#router,
      {
        ...definition,
        async handle(request) {
          const result = await definition.handle(request);
          // A handler that answers nothing and leaves the response open is streaming to a client.
          if (result === undefined && !request.response.writableEnded && !request.response.destroyed) {
            count(transport, 1);
            request.response.once('close', () => count(transport, -1));
          }
          return result;
        },
      },
      this.#authenticate,
      this.#limiter,
    );
  }

  preflight(path: string, handler: PlainHandler): void {
    this.#router.options(path, (req, res) => handler(req, res));
  }

  upgrade(path: string, handler: UpgradeHandler): void {
    if (this.#upgrades.has(path)) throw new Error(`An upgrade handler for ${path} is already mounted`);
    this.#upgrades.set(path, handler);
  }

  /** The HTTP server's `upgrade` listener: hands the socket to the handler of its path, or answers 404. */
  handleUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const handler = this.#upgrades.get(path);
    if (handler) {
      const transport = this.#upgradeOwners.get(path) ?? '';
      this.#countConnection(transport, 1);
      socket.once('close', () => this.#countConnection(transport, -1));
      handler(request, socket, head);
    } else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  };
}
