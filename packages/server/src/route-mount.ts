import {
  bearerCredential,
  ForbiddenError,
  HeraldError,
  isPortalToken,
  isStreamToken,
  PortalTokenForbiddenError,
  type Principal,
  type RouteDefinition,
  StreamTokenForbiddenError,
  toIssues,
  UnauthorizedError,
  ValidationError,
} from '@herald/core';
import express, { type Request, type RequestHandler, type Router } from 'express';
import type { z } from 'zod';
import { refuseDeepJson } from './json-depth-guard.js';
import type { RequestLimiter } from './rate-limiter.js';

/** Resolves a credential (API key, stream token or portal token) to its principal. */
export type Authenticate = (credential: string) => Promise<Principal>;

class UnsupportedMediaTypeError extends HeraldError {
  constructor() {
    super('unsupported-media-type', 415, 'The request body must be application/json', 'Unsupported media type');
  }
}

const jsonTypes = ['application/json', 'application/*+json'];

/** Refuses request bodies that are not JSON with 415, before they are read. */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  if (hasBody && !req.is(jsonTypes)) throw new UnsupportedMediaTypeError();
  next();
};

/** Reads a route's body: refuses one that is not JSON (415), parses JSON of at most `limit` bytes and refuses deep nesting. */
export function jsonBody(limit: number): RequestHandler[] {
  return [requireJsonBody, express.json({ limit, type: jsonTypes, verify: refuseDeepJson })];
}

/** How {@link mountRoute} authenticates a request and reads its body. */
export interface RouteMountOptions {
  authenticate: Authenticate;
  /** Spends each request of its key's quota, and refuses client addresses over their failed authentications. */
  limiter?: RequestLimiter;
  /** Run before the route, only for requests to it: e.g. {@link jsonBody}. @default [] (the body is not read) */
  readBody?: readonly RequestHandler[];
}

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
 * Adds a route to an express router: its body read, authentication (within the rate limits of the
 * `limiter`, when given), role, input validation, JSON answer.
 */
export function mountRoute<TBody, TQuery>(router: Router, route: RouteDefinition<TBody, TQuery>, options: RouteMountOptions): void {
  const { authenticate, limiter, readBody = [] } = options;
  const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete';
  const principalOf = (req: Request) => {
    const credential = credentialOf(req, route.queryToken ?? false);
    return credential === undefined ? Promise.reject(new UnauthorizedError()) : authenticate(credential);
  };
  router[method](route.path, ...readBody, async (req, res) => {
    const principal = await (limiter ? limiter.authenticate(req, res, () => principalOf(req)) : principalOf(req));
    if (isStreamToken(principal) && !route.streamToken) throw new StreamTokenForbiddenError();
    if (isPortalToken(principal) && !(route.portalToken ?? route.streamToken)) throw new PortalTokenForbiddenError();
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
