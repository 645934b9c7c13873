import {
  type VerifyWebhookOptions,
  verificationChallenge,
  verifyWebhook,
  type WebhookBody,
  type WebhookEvent,
  WebhookVerificationError,
} from './webhook-verify.js';

export interface WebhookMiddlewareOptions extends VerifyWebhookOptions {
  /** The subscription's `whsec_` secret; several while you rotate it. */
  secret: string | readonly string[];
  /** The largest body read, in bytes; larger ones get 413. @default 1048576 (1 MiB) */
  limit?: number;
  /** Answer Herald's endpoint verification challenges, so that a `pending` subscription becomes active. @default true */
  answerVerification?: boolean;
}

/** What the middleware adds to the request. */
export interface VerifiedWebhookRequest<T = WebhookEvent> {
  /** The parsed, verified body. */
  body: T;
  /** The bytes that were signed. */
  rawBody: Uint8Array;
  webhook: { id: string; timestamp: number };
}

/** The parts of a Node.js or express request the middleware uses. */
interface RequestLike {
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  body?: unknown;
  rawBody?: unknown;
  readableEnded?: boolean;
  on(event: 'data' | 'end' | 'error', listener: (chunk?: unknown) => void): unknown;
}

/** The parts of a Node.js or express response the middleware uses. */
interface ResponseLike {
  statusCode: number;
  headersSent?: boolean;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

function answer(res: ResponseLike, status: number, body: Record<string, unknown>): void {
  if (res.headersSent) return;
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

class BodyTooLargeError extends Error {}

function readBody(req: RequestLike, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk) => {
      if (done) return;
      const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : (chunk as Uint8Array);
      size += bytes.length;
      if (size > limit) {
        done = true;
        reject(new BodyTooLargeError());
        return;
      }
      chunks.push(bytes);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      const body = new Uint8Array(size);
      let at = 0;
      for (const chunk of chunks) {
        body.set(chunk, at);
        at += chunk.length;
      }
      resolve(body);
    });
    req.on('error', (error) => {
      done = true;
      reject(error);
    });
  });
}

/** The body an earlier middleware kept as bytes or text (`express.raw()`, `express.text()`, a `rawBody`), if any. */
function keptBody(req: RequestLike): WebhookBody | undefined {
  for (const candidate of [req.rawBody, req.body]) {
    if (typeof candidate === 'string' || candidate instanceof Uint8Array) return candidate;
  }
  return undefined;
}

/**
 * Express (or plain Node.js) middleware that reads the raw body, verifies the webhook on it, and only
 * then parses it: `app.post('/webhooks', webhookMiddleware({ secret }), (req, res) => { req.body ... })`.
 * Mount it before `express.json()`, or on the webhook route only. It answers 401 to a request that
 * fails verification (400 to a body that is not JSON, 413 to one over `limit`) with `{error, message}`,
 * and answers Herald's endpoint verification challenges itself.
 */
export function webhookMiddleware(options: WebhookMiddlewareOptions) {
  const limit = options.limit ?? 1024 * 1024;
  return (req: RequestLike, res: ResponseLike, next: (error?: unknown) => void): void => {
    void (async () => {
      let raw: WebhookBody | undefined = keptBody(req);
      if (raw === undefined && req.readableEnded) {
        next(
          new Error(
            'The request body was parsed before webhookMiddleware ran, so the signed bytes are gone: mount webhookMiddleware before express.json(), or use express.raw() on the webhook route',
          ),
        );
        return;
      }
      if (raw === undefined) {
        try {
          raw = await readBody(req, limit);
        } catch (error) {
          if (error instanceof BodyTooLargeError) answer(res, 413, { error: 'body-too-large', message: `The body is over ${limit} bytes` });
          else next(error);
          return;
        }
      }
      // Bytes once, for the check and for `req.rawBody`: text encoded, an ArrayBuffer viewed, a Buffer kept (no copy).
      const bytes = typeof raw === 'string' ? new TextEncoder().encode(raw) : raw instanceof Uint8Array ? raw : new Uint8Array(raw);
      let payload: unknown;
      try {
        payload = await verifyWebhook(options.secret, bytes, req.headers, options);
      } catch (error) {
        if (!(error instanceof WebhookVerificationError)) return next(error);
        answer(res, error.code === 'invalid-payload' ? 400 : 401, { error: error.code, message: error.message });
        return;
      }
      const challenge = (options.answerVerification ?? true) ? verificationChallenge(payload) : undefined;
      if (challenge !== undefined) {
        answer(res, 200, { challenge });
        return;
      }
      const verified = req as RequestLike & VerifiedWebhookRequest<unknown>;
      verified.rawBody = bytes;
      verified.body = payload;
      verified.webhook = { id: String(req.headers['webhook-id']), timestamp: Number(req.headers['webhook-timestamp']) };
      next();
    })();
  };
}
