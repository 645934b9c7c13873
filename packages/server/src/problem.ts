import { HeraldError, type Problem, toIssues } from '@herald/core';
import type { ErrorRequestHandler, RequestHandler } from 'express';

/** Errors of express and its body parser carry a client-error `status`, and the body parser's a `type`. */
interface ExpressError {
  status: number;
  type?: string;
  /** Set on zlib's errors: a body that does not decode with its Content-Encoding. */
  errno?: number;
}

function isExpressClientError(error: unknown): error is ExpressError {
  return typeof error === 'object' && error !== null && 'status' in error && typeof error.status === 'number' && error.status >= 400 && error.status < 500;
}

const bodyParserProblems: Record<string, { code: string; title: string; detail: string }> = {
  'entity.parse.failed': { code: 'malformed-json', title: 'Malformed JSON', detail: 'The request body is not valid JSON' },
  'entity.too.large': { code: 'body-too-large', title: 'Body too large', detail: 'The request body is over the limit' },
  'encoding.unsupported': { code: 'unsupported-encoding', title: 'Unsupported encoding', detail: 'The body encoding is not supported' },
  'charset.unsupported': { code: 'unsupported-charset', title: 'Unsupported charset', detail: 'The body must be UTF-8' },
  'request.aborted': { code: 'request-aborted', title: 'Request aborted', detail: 'The client aborted the request' },
};

/** What a client error of express is about: the body parser's `type`, the path's percent-encoding, or the body's Content-Encoding. */
function expressProblem(error: ExpressError): { code: string; title: string; detail: string } {
  const known = error.type !== undefined ? bodyParserProblems[error.type] : undefined;
  if (known) return known;
  // The router could not decode a path parameter.
  if (error instanceof URIError) return { code: 'malformed-path', title: 'Malformed path', detail: 'The path is not valid percent-encoded UTF-8' };
  if (typeof error.errno === 'number') {
    return { code: 'undecodable-body', title: 'Undecodable body', detail: 'The request body does not decode with its Content-Encoding' };
  }
  return { code: 'bad-request', title: 'Bad request', detail: 'The request could not be read' };
}

/** What {@link toIssues} reads of a zod issue. */
interface ZodIssueShape {
  path: PropertyKey[];
  message: string;
}

/**
 * Whether `error` is zod's, of whichever copy of zod threw it: zod 4's `ZodError` (`$ZodError` of zod mini and
 * zod/v4/core) and zod 3's, with their issues. An app's schemas may use a zod other than the server's, whose
 * classes `instanceof` does not know.
 */
function isZodError(error: unknown): error is { issues: ZodIssueShape[] } {
  if (typeof error !== 'object' || error === null) return false;
  const { name, issues } = error as { name?: unknown; issues?: unknown };
  return (name === 'ZodError' || name === '$ZodError') && Array.isArray(issues) && issues.every(isZodIssue);
}

function isZodIssue(issue: unknown): issue is ZodIssueShape {
  return typeof issue === 'object' && issue !== null && Array.isArray((issue as ZodIssueShape).path) && typeof (issue as ZodIssueShape).message === 'string';
}

/** Turns any error into an RFC 9457 problem. Unexpected errors become a bare 500 with no internals. */
export function toProblem(error: unknown): Problem {
  if (error instanceof HeraldError) return error.toProblem();
  if (isZodError(error)) {
    return { type: 'urn:herald:problem:validation-failed', title: 'Validation failed', status: 422, errors: toIssues(error.issues) };
  }
  if (isExpressClientError(error)) {
    const { code, title, detail } = expressProblem(error);
    return { type: `urn:herald:problem:${code}`, title, status: error.status, detail };
  }
  return { type: 'urn:herald:problem:internal', title: 'Internal Server Error', status: 500 };
}

/** Sends a problem as `application/problem+json`. */
export function sendProblem(res: Parameters<RequestHandler>[1], problem: Problem): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (problem.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}

/** Sends `error` as problem+json, with the headers a HeraldError asks for (e.g. `Retry-After`). */
function sendError(res: Parameters<RequestHandler>[1], error: unknown): void {
  if (error instanceof HeraldError && !res.headersSent) for (const [name, value] of Object.entries(error.headers())) res.setHeader(name, value);
  sendProblem(res, toProblem(error));
}

/** The last handler: every error becomes problem+json; 5xx are logged. */
export function problemHandler(onUnexpected: (error: unknown) => void): ErrorRequestHandler {
  return (error, _req, res, _next) => {
    if (!(error instanceof HeraldError) && toProblem(error).status >= 500) onUnexpected(error);
    sendError(res, error);
  };
}

/** Whether `error` is one of express's body parsers' (`express.json()`...): a body that is not JSON, too large, undecodable. */
function isBodyParserError(error: unknown): boolean {
  return isExpressClientError(error) && ((error.type !== undefined && error.type in bodyParserProblems) || typeof error.errno === 'number');
}

/**
 * For the routes of your own express app, after them: `app.use(errorHandler())`. An error of Herald's (a
 * `ValidationError` thrown by `herald.publish`, a `NotFoundError`, ...) becomes RFC 9457 problem+json with
 * its status, as does one of express's body parsers on your routes (`express.json()`: a body that is not
 * JSON, 400 `malformed-json`; over its limit, 413 `body-too-large`), as Herald's own routes answer them;
 * any other error goes on to your next error handler, untouched.
 */
export function errorHandler(): ErrorRequestHandler {
  return (error, _req, res, next) => {
    if (error instanceof HeraldError || isBodyParserError(error)) sendError(res, error);
    else next(error);
  };
}
