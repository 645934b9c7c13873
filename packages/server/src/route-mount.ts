import {
  bearerCredential,
  ForbiddenError,
  HeraldError,
  isStreamToken,
  type Principal,
  type RouteDefinition,
  StreamTokenForbiddenError,
  toIssues,
  UnauthorizedError,
  ValidationError,
} from '@herald/core';
import type { Request, RequestHandler, Router } from 'express';
import type { z } from 'zod';
import type { RequestLimiter } from './rate-limiter.js';

/** Resolves a credential (API key or stream token) to its principal. */
export type Authenticate = (credential: string) => Promise<Principal>;

class UnsupportedMediaTypeError extends HeraldError {
  constructor() {
    super('unsupported-media-type', 415, 'The request body must be application/json', 'Unsupported media type');
  }
}

/** Refuses request bodies that are not JSON with 415, before they are read. */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  if (hasBody && !req.is(['application/json', 'application/*+json'])) throw new UnsupportedMediaTypeError();
  next();
};

function credentialOf(req: Request, queryToken: boolean): string | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) return bearerCredential(header);
  const fromQuery = req.query.access_token;
  if (queryToken && typeof fromQuery === 'string' && fromQuery !== '') return fromQuery;
  return undefined;
}

/** Parses `value` with `schema`, or throws a ValidationError naming `where`. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(`The request ${where} is not valid`, toIssues(result.error.issues));
  return result.data;
}

/**
 * Adds a route to an express router: authentication (within the rate limits of `limiter`, when given),
 * role, input validation, JSON answer.
 */
export function mountRoute<TBody, TQuery>(router: Router, route: RouteDefinition<TBody, TQuery>, authenticate: Authenticate, limiter?: RequestLimiter): void {
  const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete';
  const principalOf = (req: Request) => {
    const credential = credentialOf(req, route.queryToken ?? false);
    return credential === undefined ? Promise.reject(new UnauthorizedError()) : authenticate(credential);
  };
  router[method](route.path, async (req, res) => {
    const principal = await (limiter ? limiter.authenticate(req, res, () => principalOf(req)) : principalOf(req));
    if (isStreamToken(principal) && !route.streamToken) throw new StreamTokenForbiddenError();
    if (route.role === 'admin' && principal.role !== 'admin') throw new ForbiddenError('Only an admin key may do this');
    const body = route.body ? parseInput(route.body, req.body, 'body') : (req.body as TBody);
    const query = route.query ? parseInput(route.query, req.query, 'query') : (req.query as TQuery);
    const result = await route.handle({ principal, params: req.params as Record<string, string>, body, query, raw: req, response: res });
    if (result === undefined) return;
    for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, value);
    res.status(result.status ?? 200);
    if (result.body === undefined) res.end();
    else res.json(result.body);
  });
}
