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

/**
 * Passes a {@link MethodNotAllowedError} to `next` for a request to a path that `surface` serves (its routes
 * and plain routes; not its upgrades) with a method it does not take there, and nothing for a path it does
 * not serve (a 404 is then for the caller to give). Paths match as express matches them for the routes;
 * a GET takes HEAD too, as express answers it.
 */
export function refuseOtherMethods({ routes, plainRoutes }: Pick<ApiSurface, 'routes' | 'plainRoutes'>): RequestHandler {
  const methods = new Map<string, Set<string>>();
  const served = [...routes.map(({ definition }) => definition), ...plainRoutes.map(({ path }) => ({ method: 'GET', path }))];
  for (const { method, path } of served) {
    const taken = methods.get(path) ?? new Set();
    taken.add(method);
    if (method === 'GET') taken.add('HEAD');
    methods.set(path, taken);
  }
  const router = express.Router();
  for (const [path, taken] of methods) {
    const allow = [...taken].sort();
    router.all(path, (req, _res, next) => next(new MethodNotAllowedError(req.method, req.path, allow)));
  }
  return router;
}
