import { verificationChallenge, verifyWebhook, type WebhookEvent } from '@herald/client';
import express, { type Request, type Response, type Router } from 'express';

/** The secrets of each webhook subscription that delivers to the inbox: the current one, and rotated-out ones still in their grace period. */
export type SecretSource = () => Promise<readonly { subscriptionId: string; secrets: readonly string[] }[]>;

/** One request the inbox received. */
export interface InboxEntry {
  /**
   * `<start>-<n>`: when this start of the inbox began (ms since the epoch), and the receipt's number in it,
   * from 1. Unique across restarts; the SSE id a page resumes after.
   */
  id: string;
  /** When it arrived, ms since the epoch. */
  receivedAt: number;
  webhookId?: string;
  /** Whether `verifyWebhook` accepted it with the secret of a subscription. */
  verified: boolean;
  /** The subscription whose secret verified it. */
  subscriptionId?: string;
  /** The envelope (or the endpoint-verification challenge), once verified. */
  event?: WebhookEvent;
  /** Why it was refused. */
  problem?: string;
}

/** Seconds a webhook refused while the inbox stops waits before Herald delivers it again: after the restart. */
const stoppingRetryAfter = '1';

/**
 * The demo's built-in webhook receiver: checks each POST with `verifyWebhook` from `@herald/client`
 * against the secrets of the webhook subscriptions that point at it, keeps the last entries, and
 * streams them to the page. A real receiver keeps the secret it was shown when it subscribed; this
 * one, living in the same process as Herald, reads them from the subscriptions. It answers 401 to
 * what does not verify, as a real receiver would.
 *
 * What it received lives in memory, for this start only. Its ids name the start, so a page that resumes
 * after an id of an earlier start is sent everything this start kept. Once it stops streaming it takes no
 * more webhooks (503, `Retry-After`): Herald delivers those again after the restart, rather than the inbox
 * taking them with no page left to show them to.
 */
export class WebhookInbox {
  readonly #secrets: SecretSource;
  readonly #entries: InboxEntry[] = [];
  readonly #listeners = new Set<(entry: InboxEntry) => void>();
  readonly #streams = new Set<Response>();
  readonly #keep: number;
  /** This start's part of the ids. */
  readonly #start = String(Date.now());
  #received = 0;
  #closed = false;

  /** @param keep entries kept for pages that connect later. @default 500 */
  constructor(secrets: SecretSource, keep = 500) {
    this.#secrets = secrets;
    this.#keep = keep;
  }

  get entries(): readonly InboxEntry[] {
    return this.#entries;
  }

  /**
   * `POST /demo/inbox` (the webhook endpoint) and `GET /demo/inbox/stream` (what it received, as SSE, after
   * the `Last-Event-ID` header or the `?after=` query: a page that opens a new EventSource has no header).
   */
  router(): Router {
    const router = express.Router();
    // The raw bytes: a body parsed and serialised again is not what was signed.
    router.post('/demo/inbox', express.raw({ type: () => true, limit: '1mb' }), (req, res) => this.#receive(req, res));
    router.get('/demo/inbox/stream', (req, res) => this.#stream(req, res));
    return router;
  }

  async #receive(req: Request, res: Response): Promise<void> {
    const rawBody: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let verified: { subscriptionId: string; event: WebhookEvent } | undefined;
    let problem = 'no webhook subscription points at this inbox';
    for (const { subscriptionId, secrets } of await this.#secrets()) {
      try {
        verified = { subscriptionId, event: await verifyWebhook(secrets, rawBody, req.headers) };
        break;
      } catch (error) {
        problem = error instanceof Error ? error.message : String(error);
      }
    }
    if (this.#closed) {
      res.status(503).set('retry-after', stoppingRetryAfter).json({ error: 'the demo is stopping: deliver this again once it has started' });
      return;
    }
    const webhookId = req.get('webhook-id');
    this.#record({
      id: `${this.#start}-${++this.#received}`,
      receivedAt: Date.now(),
      ...(webhookId !== undefined ? { webhookId } : {}),
      verified: verified !== undefined,
      ...(verified ? verified : { problem }),
    });
    if (!verified) {
      res.status(401).json({ error: problem });
      return;
    }
    const challenge = verificationChallenge(verified.event);
    if (challenge !== undefined) res.json({ challenge });
    else res.status(204).end();
  }

  #record(entry: InboxEntry): void {
    this.#entries.push(entry);
    if (this.#entries.length > this.#keep) this.#entries.shift();
    for (const listener of this.#listeners) listener(entry);
  }

  /** Every entry after the page's resume id, then the new ones as they arrive. */
  #stream(req: Request, res: Response): void {
    if (this.#closed) {
      res.status(503).set('retry-after', stoppingRetryAfter).end();
      return;
    }
    const after = this.#receiptAfter(req.get('last-event-id') ?? req.query.after);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const send = (entry: InboxEntry) => res.write(`id: ${entry.id}\ndata: ${JSON.stringify(entry)}\n\n`);
    res.write('retry: 1000\n\n');
    for (const entry of this.#entries.slice(Math.max(0, this.#entries.length - (this.#received - after)))) send(entry);
    this.#listeners.add(send);
    this.#streams.add(res);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    res.once('close', () => {
      clearInterval(keepAlive);
      this.#listeners.delete(send);
      this.#streams.delete(res);
    });
  }

  /** The receipt number of this start a resume id names; 0 (everything kept) for another start's id, or none. */
  #receiptAfter(resumeId: unknown): number {
    const [start, n] = typeof resumeId === 'string' ? resumeId.split('-') : [];
    const number = Number(n);
    return start === this.#start && Number.isSafeInteger(number) ? Math.min(Math.max(number, 0), this.#received) : 0;
  }

  /** Ends every open inbox stream so the server can close, and refuses new streams and webhooks (503). */
  close(): void {
    this.#closed = true;
    for (const stream of this.#streams) stream.end();
  }
}
