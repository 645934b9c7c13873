import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { NotFoundError } from '@herald/core';
import type { Express } from 'express';
import { checkBasePath, urlBelow } from './base-path.js';

/** Where Herald is mounted on a server of yours. */
export interface MountOptions {
  /** The path Herald's REST routes, WebSocket and SSE live under, e.g. `/events`. @default '' (the root) */
  basePath?: string;
}

/**
 * Herald's two HTTP entry points under one base path, for a server or framework of yours; `herald.attach`
 * puts them in front of a `node:http` server.
 */
export interface HeraldHandlers {
  readonly basePath: string;
  /**
   * Answers a request for one of Herald's routes under the base path. Any other request goes to `next()`
   * untouched, its body unread; without `next`, it is answered 404 problem+json.
   */
  handleRequest(request: IncomingMessage, response: ServerResponse, next?: () => void): void;
  /**
   * Takes an upgrade request for one of Herald's WebSocket paths under the base path and returns true.
   * Returns false for any other one, and leaves its socket alone for the server's other upgrade listeners.
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean;
}

/** What express's router sets on a request it routes. */
interface RoutedRequest extends IncomingMessage {
  baseUrl?: string;
  originalUrl?: string;
}

/** Takes an upgrade request for a path below the base path, or returns false. */
export type UpgradeTaker = (path: string, request: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/** Answers 404 problem+json without express: the request is outside Herald's app. */
function sendNotFound(request: IncomingMessage, response: ServerResponse): void {
  const problem = new NotFoundError(`Route ${request.method} ${request.url?.split('?', 1)[0]}`).toProblem();
  response.writeHead(problem.status, { 'content-type': 'application/problem+json; charset=utf-8' }).end(JSON.stringify(problem));
}

/**
 * Builds the handlers of `app` (Herald's express app) under `options.basePath`. Requests below the base path
 * go through `app` as express's own mounting would route them: `req.url` below the base, `req.baseUrl` the
 * base. Those no route takes are marked in `passOn`, so that `app` hands them back instead of answering
 * 404, and are restored as they came before they go to `next`.
 */
export function heraldHandlers(app: Express, passOn: WeakSet<IncomingMessage>, takeUpgrade: UpgradeTaker, options: MountOptions = {}): HeraldHandlers {
  const basePath = checkBasePath(options.basePath ?? '');
  // Express apps take a third argument, the `next` of the router they are mounted in; its types omit it.
  const route = app as unknown as (request: IncomingMessage, response: ServerResponse, next: () => void) => void;
  return {
    basePath,
    handleRequest(request: RoutedRequest, response, next = () => sendNotFound(request, response)) {
      const url = request.url ?? '/';
      const below = urlBelow(url, basePath);
      if (below === undefined) return next();
      const { baseUrl, originalUrl } = request;
      const prototypes = [Object.getPrototypeOf(request), Object.getPrototypeOf(response)] as const;
      request.url = below;
      request.baseUrl = (baseUrl ?? '') + basePath;
      request.originalUrl = originalUrl ?? url;
      passOn.add(request);
      route(request, response, () => {
        passOn.delete(request);
        Object.setPrototypeOf(request, prototypes[0]);
        Object.setPrototypeOf(response, prototypes[1]);
        Object.assign(request, { url, baseUrl, originalUrl });
        next();
      });
    },
    handleUpgrade(request, socket, head) {
      const below = urlBelow(request.url ?? '/', basePath);
      return below !== undefined && takeUpgrade(below.split('?', 1)[0] as string, request, socket, head);
    },
  };
}
