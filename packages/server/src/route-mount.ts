import {
  bearerCredential,
  ForbiddenError,
  HeraldError,
  inputError,
  isPortalToken,
  isStreamToken,
  isStorableText,
  NotFoundError,
  PortalTokenForbiddenError,
  type Principal,
  queryInputError,
  type RouteDefinition,
  type RouteResult,
  StreamTokenForbiddenError,
  toIssues,
  UnauthorizedError,
  ValidationError,
} from '@herald/core';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import express, { type RequestHandler, type Router } from 'express';
import type { z } from 'zod';
import { refuseDeepJson } from './json-depth-guard.js';
import { toProblem } from './problem.js';
import type { RequestLimiter } from './rate-limiter.js';

/** Resolves a credential (API key, stream token or portal token) to its principal. */
export type Authenticate = (credential: string) => Promise<Principal>;

class UnsupportedMediaTypeError extends HeraldError {
  constructor() {
    super('unsupported-media-type', 415, 'The request body must be application/json', 'Unsupported media type');
  }
}

const jsonTypes = ['application/json', 'application/*+json'];

/** Whether a request with these headers carries a body: an empty one (`Content-Length: 0`) does not. */
function carriesBody(headers: IncomingHttpHeaders): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] ?? '0') !== '0';
}

/** Refuses request bodies that are not JSON with 415, before they are read. */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  if (carriesBody(req.headers) && !req.is(jsonTypes)) throw new UnsupportedMediaTypeError();
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
  /**
   * Told first of each request to a route (with its response) and of each upgrade (without), before its body is
   * read or its credential checked; throws a `HeraldError` to refuse it, e.g. an `UnavailableError` while the server stops.
   * @default every request is taken
   */
  admit?: (request: IncomingMessage, response?: ServerResponse) => void;
}

/**
 * The request's credential: its `Authorization` header, or its `?access_token=` on a route that takes one.
 * Throws {@link UnauthorizedError} saying what to send when there is none, or `access_token` was given twice.
 */
function credentialOf(headers: IncomingHttpHeaders, query: Record<string, unknown>, queryToken: boolean): string {
  const header = headers.authorization;
  if (header !== undefined) return bearerCredential(header);
  if (!queryToken) throw new UnauthorizedError();
  const fromQuery = query.access_token;
  if (Array.isArray(fromQuery)) throw new UnauthorizedError('access_token was given more than once: give it once');
  if (typeof fromQuery === 'string' && fromQuery !== '') return fromQuery;
  throw new UnauthorizedError('A valid API key or stream token is required: Authorization: Bearer <key>, or ?access_token=<stream token>');
}

/**
 * Parses `value` with `schema`, or throws a ValidationError naming `where`; `sentNone`: the request had no
 * body (`where` is the body), which the error then asks for.
 */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, where: string, sentNone = false): T {
  const result = schema.safeParse(value, { error: where === 'query' ? queryInputError : inputError });
  if (result.success) return result.data;
  if (sentNone) throw missingBody(schema);
  throw new ValidationError(`The request ${where} is not valid`, toIssues(result.error.issues));
}

/** The error for a request that sent no body to a route that needs one: send a JSON object, and what an empty one lacks. */
function missingBody(schema: z.ZodType): ValidationError {
  const empty = schema.safeParse({}, { error: inputError });
  return new ValidationError('The request needs a JSON body (Content-Type: application/json), and it sent none', [
    { path: [], message: 'required: a JSON object', code: 'invalid_type' },
    ...(empty.success ? [] : toIssues(empty.error.issues)),
  ]);
}

/** What a route is run with: the request as read by express, or as {@link answerDirectly} reads it. */
interface RouteInput {
  req: IncomingMessage;
  res: ServerResponse;
  query: Record<string, unknown>;
  params: Record<string, string>;
  body: unknown;
}

/**
 * Sets the route's own headers (CORS), which a refusal needs as much as an answer, then lets `admit` refuse the
 * request. A long poll's answers are never stored: what it answers depends on when it is asked.
 */
function enter(route: Pick<RouteDefinition, 'headers' | 'longPoll'>, options: RouteMountOptions, req: IncomingMessage, res: ServerResponse): void {
  if (route.longPoll) res.setHeader('Cache-Control', 'no-store');
  for (const [name, value] of Object.entries(route.headers?.(req) ?? {})) res.setHeader(name, value);
  options.admit?.(req, res);
}

/**
 * Authenticates (within the limits), checks the role, validates the input and runs the route. A request
 * spends one of its key's quota; a long poll once answered, unless its answer says it counts for none.
 */
async function runRoute<TBody, TQuery>(route: RouteDefinition<TBody, TQuery>, options: RouteMountOptions, input: RouteInput): Promise<RouteResult | undefined> {
  const { authenticate, limiter } = options;
  const { req, res } = input;
  const principalOf = async () => authenticate(credentialOf(req.headers, input.query, route.queryToken ?? false));
  if (!limiter) return answer(route, input, await principalOf());
  const principal = await limiter.authenticate(req, res, principalOf, !route.longPoll);
  if (!route.longPoll) return answer(route, input, principal);
  let result: RouteResult | undefined;
  try {
    result = await answer(route, input, principal);
    return result;
  } finally {
    if (result?.countsAgainstRateLimit !== false) await limiter.spend(principal, res);
  }
}

/** Checks the principal's role, validates the input and runs the route. */
async function answer<TBody, TQuery>(route: RouteDefinition<TBody, TQuery>, input: RouteInput, principal: Principal): Promise<RouteResult | undefined> {
  const { req, res } = input;
  if (isStreamToken(principal) && !route.streamToken) throw new StreamTokenForbiddenError();
  if (isPortalToken(principal) && !(route.portalToken ?? route.streamToken)) throw new PortalTokenForbiddenError();
  if (route.role === 'admin' && principal.role !== 'admin') throw new ForbiddenError('Only an admin key may do this');
  for (const [name, value] of Object.entries(input.params)) if (!isStorableText(value)) throw new NotFoundError(`The ${name} ${JSON.stringify(value)}`);
  const body = route.body ? parseInput(route.body, input.body, 'body', input.body === undefined || !carriesBody(req.headers)) : (input.body as TBody);
  const query = route.query ? parseInput(route.query, input.query, 'query') : (input.query as TQuery);
  return route.handle({ principal, params: input.params, body, query, raw: req, response: res });
}

/**
 * Adds a route to an express router: its body read, authentication (within the rate limits of the
 * `limiter`, when given), role, input validation, JSON answer.
 */
export function mountRoute<TBody, TQuery>(router: Router, route: RouteDefinition<TBody, TQuery>, options: RouteMountOptions): void {
  const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete';
  const entered: RequestHandler = (req, res, next) => {
    enter(route, options, req, res);
    next();
  };
  router[method](route.path, entered, ...(options.readBody ?? []), async (req, res) => {
    const result = await runRoute(route, options, { req, res, query: req.query, params: req.params as Record<string, string>, body: req.body });
    if (result === undefined) return;
    for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, value);
    res.status(result.status ?? 200);
    if (result.body === undefined) res.end();
    // Without express's ETag, which would let `If-None-Match` turn a poll's answer into a 304.
    else if (route.longPoll) res.type('json').end(JSON.stringify(result.body));
    else res.json(result.body);
  });
}

/** Answers a request without express: a route's answer, or the problem+json of its error. */
export type DirectRoute = (req: IncomingMessage, res: ServerResponse, query: Record<string, unknown>) => void;

/**
 * The route of {@link mountRoute} for a request that has no body and no path parameters, answered
 * straight from `node:http`: the same authentication, limits, validation and problem+json answers, with
 * none of express's per-request state (its prototypes, router chain and parsed URL). For routes whose
 * responses stay open for hours, where that state is most of what each one costs. `onUnexpected` is told
 * of errors that become a 500.
 */
export function directRoute<TBody, TQuery>(route: RouteDefinition<TBody, TQuery>, options: RouteMountOptions, onUnexpected: (error: unknown) => void): DirectRoute {
  return (req, res, query) => {
    const answered = async () => {
      enter(route, options, req, res);
      return runRoute(route, options, { req, res, query, params: {}, body: undefined });
    };
    answered().then(
      (result) => {
        if (result === undefined) return;
        const json = result.body === undefined ? undefined : JSON.stringify(result.body);
        res.writeHead(result.status ?? 200, { ...result.headers, ...(json !== undefined ? { 'content-type': 'application/json; charset=utf-8' } : {}) });
        res.end(json);
      },
      (error: unknown) => sendProblemDirectly(res, error, onUnexpected),
    );
  };
}

/** The problem+json answer the problem handler gives `error`, written with `node:http` alone. */
function sendProblemDirectly(res: ServerResponse, error: unknown, onUnexpected: (error: unknown) => void): void {
  const problem = toProblem(error);
  if (!(error instanceof HeraldError) && problem.status >= 500) onUnexpected(error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof HeraldError) for (const [name, value] of Object.entries(error.headers())) res.setHeader(name, value);
  if (problem.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
  res.writeHead(problem.status, { 'content-type': 'application/problem+json; charset=utf-8' });
  res.end(JSON.stringify(problem));
}
