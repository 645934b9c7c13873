import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { Duplex } from 'node:stream';
import { HeraldError, type HttpMount, type PlainHandler, type RouteDefinition, type UpgradeHandler } from '@herald/core';
import type { Express, Router } from 'express';
import { type DirectRoute, directRoute, mountRoute, type RouteMountOptions } from './route-mount.js';

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
  readonly #preflights = new Set<string>();
  /** The streaming routes answered before express sees the request, by path. */
  readonly #direct = new Map<string, DirectRoute>();
  #onUnexpected: ((error: unknown) => void) | undefined;

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
    const counted: RouteDefinition = {
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
    };
    mountRoute(this.#router, counted, this.#routeOptions);
    const onUnexpected = this.#onUnexpected;
    if (onUnexpected && streamsWithoutExpress(definition)) this.#direct.set(definition.path, directRoute(counted, this.#routeOptions, onUnexpected));
  }

  /**
   * Puts the streaming routes (`GET`, no path parameters, answered as `text/event-stream`) in front of
   * `app`: their requests are answered straight from `node:http`, before express gives the request and
   * the response its prototypes and routing state, which an open stream would keep for hours. The routes
   * are on `app` all the same, for the requests this leaves to it: those with a body, those whose path
   * is written differently (a trailing slash, other case), and all of them when `app` trusts a proxy
   * (the client address the rate limits use is then express's to read). Call it before the routes are
   * added; `onUnexpected` is told of the errors that become a 500. Every answer to a request that
   * `closesConnection`, these and express's, closes its keep-alive connection: once the server is stopping,
   * close() need not wait out a client that keeps asking.
   */
  answerFirst(app: Express, onUnexpected: (error: unknown) => void, closesConnection: (request: IncomingMessage) => boolean): void {
    this.#onUnexpected = onUnexpected;
    const expressApp = app as unknown as ExpressHandle;
    const handle = expressApp.handle;
    const direct = this.#direct;
    expressApp.handle = function (this: ExpressHandle, request, response, next) {
      if (closesConnection(request)) response.setHeader('Connection', 'close');
      if (direct.size === 0 || !answerDirectly(direct, app, request, response)) handle.call(this, request, response, next);
    };
  }

  /** The paths whose `OPTIONS` a transport answers itself (CORS preflights). */
  get preflights(): ReadonlySet<string> {
    return this.#preflights;
  }

  preflight(path: string, handler: PlainHandler): void {
    this.#preflights.add(path);
    this.#router.options(path, (req, res) => handler(req, res));
  }

  upgrade(path: string, handler: UpgradeHandler): void {
    if (this.#upgrades.has(path)) throw new Error(`An upgrade handler for ${path} is already mounted`);
    this.#upgrades.set(path, handler);
  }

  /**
   * Hands an upgrade request for `path` to the transport that added it, unless the route options' `admit`
   * refuses it (answered with its problem); returns false, touching nothing, when no transport added `path`.
   */
  takeUpgrade(path: string, request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const handler = this.#upgrades.get(path);
    if (!handler) return false;
    try {
      this.#routeOptions.admit?.(request);
    } catch (error) {
      if (!(error instanceof HeraldError)) throw error;
      refuseUpgrade(socket, error);
      return true;
    }
    const transport = this.#upgradeOwners.get(path) ?? '';
    this.#countConnection(transport, 1);
    socket.once('close', () => this.#countConnection(transport, -1));
    handler(request, socket, head);
    return true;
  }
}

/** What `express()` returns, as a function that handles a request: the `handle` it calls is looked up on each request. */
interface ExpressHandle {
  handle(request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void): void;
}

/** A route {@link TransportMount.answerFirst} serves without express. */
function streamsWithoutExpress(definition: RouteDefinition): boolean {
  return definition.method === 'GET' && !definition.path.includes(':') && definition.response?.mediaType === 'text/event-stream';
}

/** Answers `request` when it is for one of the `direct` routes and nothing about it needs express; false otherwise. */
function answerDirectly(direct: ReadonlyMap<string, DirectRoute>, app: Express, request: IncomingMessage, response: ServerResponse): boolean {
  const { method, url = '/', headers } = request;
  if (method !== 'GET' && method !== 'HEAD') return false;
  const mark = url.indexOf('?');
  const route = direct.get(mark === -1 ? url : url.slice(0, mark));
  if (route === undefined) return false;
  if (headers['transfer-encoding'] !== undefined || (headers['content-length'] ?? '0') !== '0' || app.get('trust proxy')) return false;
  // express's `simple` query parser, which Herald's app uses, is `querystring.parse`.
  route(request, response, mark === -1 ? {} : parseQuery(url.slice(mark + 1)));
  return true;
}

/** Answers an upgrade request that nobody takes with 404, or one refused with `error`'s problem+json and headers, and closes its socket. */
export function refuseUpgrade(socket: Duplex, error?: HeraldError): void {
  if (!error) {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const body = JSON.stringify(error.toProblem());
  const headers = Object.entries(error.headers()).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\nConnection: close\r\n${headers.join('')}` +
      `Content-Type: application/problem+json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
