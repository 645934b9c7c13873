import { HeraldError } from '@herald/core';
import express, { type RequestHandler } from 'express';
import type { ApiSurface } from './api-surface.js';

/** 405: the path is served, but not with the request's method; `Allow` names the methods it is served with. */
export class MethodNotAllowedError extends HeraldError {
  override readonly name: string = 'MethodNotAllowedError';
  constructor(
    method: string,
    path: string,
    readonly allow: readonly string[],
  ) {
    super('method-not-allowed', 405, `${path} does not take ${method}: it takes ${allow.join(', ')}`, 'Method not allowed');
  }

  override headers(): Record<string, string> {
    return { Allow: this.allow.join(', ') };
  }
}

type ServedPaths = Pick<ApiSurface, 'routes' | 'plainRoutes'>;

/**
 * The methods each path of `surface` (its routes and plain routes; not its upgrades) is served with, sorted, by
 * path: a GET takes HEAD too, as express answers it, and every path takes OPTIONS.
 */
function methodsByPath({ routes, plainRoutes }: ServedPaths): Map<string, string[]> {
  const methods = new Map<string, Set<string>>();
  const served = [...routes.map(({ definition }) => definition), ...plainRoutes.map(({ path }) => ({ method: 'GET', path }))];
  for (const { method, path } of served) {
    const taken = methods.get(path) ?? new Set(['OPTIONS']);
    taken.add(method);
    if (method === 'GET') taken.add('HEAD');
    methods.set(path, taken);
  }
  return new Map([...methods].map(([path, taken]) => [path, [...taken].sort()]));
}

/**
 * Answers `OPTIONS` on a path that `surface` serves with 204 and the methods it is served with in `Allow`,
 * unless the path is one of `preflights`, whose own handler answers it (a CORS preflight); anything else
 * goes to `next`. Paths match as express matches them for the routes.
 */
export function answerOptions(surface: ServedPaths, preflights: ReadonlySet<string>): RequestHandler {
  const router = express.Router();
  for (const [path, allow] of methodsByPath(surface)) {
    if (preflights.has(path)) continue;
    router.options(path, (_req, res) => {
      res.setHeader('Allow', allow.join(', '));
      res.status(204).end();
    });
  }
  return router;
}

/**
 * Passes a {@link MethodNotAllowedError} to `next` for a request to a path that `surface` serves with a method
 * it does not take there, and nothing for a path it does not serve (a 404 is then for the caller to give).
 * Paths match as express matches them for the routes.
 */
export function refuseOtherMethods(surface: ServedPaths): RequestHandler {
  const router = express.Router();
  for (const [path, allow] of methodsByPath(surface)) {
    router.all(path, (req, _res, next) => next(new MethodNotAllowedError(req.method, req.path, allow)));
  }
  return router;
}
