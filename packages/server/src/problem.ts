import { HeraldError, NotFoundError, type Problem, toIssues } from '@herald/core';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';

/** Errors from express's body parser carry a `type` and a client-error status. */
interface BodyParserError {
  type: string;
  status: number;
  expose?: boolean;
}

function isBodyParserError(error: unknown): error is BodyParserError {
  return typeof error === 'object' && error !== null && 'type' in error && 'status' in error && typeof error.status === 'number';
}

const bodyParserProblems: Record<string, { code: string; title: string; detail: string }> = {
  'entity.parse.failed': { code: 'malformed-json', title: 'Malformed JSON', detail: 'The request body is not valid JSON' },
  'entity.too.large': { code: 'body-too-large', title: 'Body too large', detail: 'The request body is over the limit' },
  'encoding.unsupported': { code: 'unsupported-encoding', title: 'Unsupported encoding', detail: 'The body encoding is not supported' },
  'charset.unsupported': { code: 'unsupported-charset', title: 'Unsupported charset', detail: 'The body must be UTF-8' },
  'request.aborted': { code: 'request-aborted', title: 'Request aborted', detail: 'The client aborted the request' },
};

/** Turns any error into an RFC 9457 problem. Unexpected errors become a bare 500 with no internals. */
export function toProblem(error: unknown): Problem {
  if (error instanceof HeraldError) return error.toProblem();
  if (error instanceof ZodError) {
    return { type: 'urn:herald:problem:validation-failed', title: 'Validation failed', status: 422, errors: toIssues(error.issues) };
  }
  if (isBodyParserError(error) && error.status >= 400 && error.status < 500) {
    const known = bodyParserProblems[error.type];
    return {
      type: `urn:herald:problem:${known?.code ?? 'bad-request'}`,
      title: known?.title ?? 'Bad request',
      status: error.status,
      detail: known?.detail ?? 'The request could not be read',
    };
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

/** The last handler: every error becomes problem+json; 5xx are logged. */
export function problemHandler(onUnexpected: (error: unknown) => void): ErrorRequestHandler {
  return (error, _req, res, _next) => {
    const problem = toProblem(error);
    if (problem.status >= 500 && !(error instanceof HeraldError)) onUnexpected(error);
    if (error instanceof HeraldError && !res.headersSent) for (const [name, value] of Object.entries(error.headers())) res.setHeader(name, value);
    sendProblem(res, problem);
  };
}

/** Answers every request that no route took with a 404 problem. */
export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`Route ${req.method} ${req.path}`));
};
