import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HttpMount, PlainHandler, RouteDefinition, UpgradeHandler } from '@herald/core';
import type { Router } from 'express';
import { mountRoute, type RouteMountOptions } from './route-mount.js';

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
  readonly #routeOptions: RouteMountOptions;
  readonly #countConnection: ConnectionCounter;
  readonly #upgrades = new Map<string, UpgradeHandler>();
  readonly #upgradeOwners = new Map<string, string>();
  readonly #routes: MountedRoute[] = [];

  constructor(router: Router, routeOptions: RouteMountOptions, countConnection: ConnectionCounter = () => {}) {
    this.#router = router;
    this.#routeOptions = routeOptions;
    this.#countConnection = countConnection;
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
          const { response } = request;
          const connected = () => {
            count(transport, 1);
            response.once('close', () => count(transport, -1));
          };
          if (definition.longPoll && !response.closed) connected();
          const result = await definition.handle(request);
          // A handler that answers nothing and leaves the response open is streaming to a client.
          if (!definition.longPoll && result === undefined && !response.writableEnded && !response.destroyed) connected();
          return result;
        },
      },
      this.#routeOptions,
    );
  }

  preflight(path: string, handler: PlainHandler): void {
    this.#router.options(path, (req, res) => handler(req, res));
  }

  upgrade(path: string, handler: UpgradeHandler): void {
    if (this.#upgrades.has(path)) throw new Error(`An upgrade handler for ${path} is already mounted`);
    this.#upgrades.set(path, handler);
  }

  /** Hands an upgrade request for `path` to the transport that added it; returns false, touching nothing, when none did. */
  takeUpgrade(path: string, request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const handler = this.#upgrades.get(path);
    if (!handler) return false;
    const transport = this.#upgradeOwners.get(path) ?? '';
    this.#countConnection(transport, 1);
    socket.once('close', () => this.#countConnection(transport, -1));
    handler(request, socket, head);
    return true;
  }
}

/** Answers an upgrade request that nobody takes with 404, and closes its socket. */
export function refuseUpgrade(socket: Duplex): void {
  socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
}
