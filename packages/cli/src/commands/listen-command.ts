import { once } from 'node:events';
import { type DeliveredEvent, HeraldSocket } from '@herald/client';
import { generateSecret, secretPattern } from '@herald/webhook/signing';
import { WebSocket } from 'ws';
import { CliError } from '../cli-error.js';
import { apiUrl, HeraldApi, type ServerOptions } from '../herald-api.js';
import { shutdownSignal } from '../shutdown-signal.js';
import { resetNote } from '../stream-reset.js';
import { type Colors, terminal } from '../terminal-output.js';
import { type ForwardAttempt, WebhookForwarder } from '../webhook-forwarder.js';

/** `herald listen`'s flags. */
export interface ListenFlags extends ServerOptions {
  /** The local endpoint, e.g. `http://localhost:4000/webhooks` (`localhost:4000/webhooks` too). */
  forwardTo: string;
  /** Event types and patterns for a stream that starts now. @default ['**'] */
  types?: string[];
  /** A durable `websocket` subscription to follow instead, from its stored cursor. */
  subscription?: string;
  /** The `whsec_` secret to sign with. @default a new one, printed at start */
  secret?: string;
  json?: boolean;
}

function forwardUrl(given: string): string {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(given) ? given : `http://${given}`;
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new CliError('bad-input', `--forward-to must be an http(s) URL, not "${given}"`);
  return url;
}

function statusColor(status: number, colors: Colors): (text: string) => string {
  return status < 300 ? colors.green : status < 500 ? colors.yellow : colors.red;
}

/** `14:03:22  #1042  order.created  → 200  8 ms`, and what happens next when it failed. */
function attemptLine(attempt: ForwardAttempt, colors: Colors, now = new Date()): string {
  const { event, status, error, latency, outcome } = attempt;
  const answer = status !== undefined ? statusColor(status, colors)(String(status)) : colors.red(error ?? 'failed');
  const next =
    outcome === 'retrying'
      ? colors.yellow(`  retrying in ${(attempt.retryIn ?? 0) / 1000} s`)
      : outcome === 'failed'
        ? colors.red(attempt.attempt > 1 ? `  gave up after ${attempt.attempt} attempts` : '  not retried')
        : '';
  return `${colors.dim(now.toTimeString().slice(0, 8))}  ${colors.bold(`#${event.seq}`)}  ${colors.cyan(event.type)}  → ${answer}  ${colors.dim(`${latency} ms`)}${next}`;
}

function closeError(code: number, reason: string): CliError {
  if (code === 4401) return new CliError('unauthorized', `the key was refused: ${reason || 'unauthorized'} (close ${code})`, 401);
  return new CliError('disconnected', `Herald closed the connection for good: ${reason || 'no reason given'} (close ${code})`, 502);
}

/**
 * `herald listen --forward-to <url>`: receives events over WebSocket (herald.v1) and forwards each,
 * signed after Standard Webhooks, to a local endpoint, one line per attempt. It resumes after a drop
 * with nothing missed; with `--subscription`, from the durable subscription's cursor across restarts.
 */
export async function listen(flags: ListenFlags): Promise<void> {
  const target = forwardUrl(flags.forwardTo);
  const secret = flags.secret ?? generateSecret();
  if (!secretPattern.test(secret)) throw new CliError('bad-input', '--secret must be a whsec_ secret: whsec_ and base64 of 24 to 64 bytes');
  const api = new HeraldApi(flags);
  const { out, err } = terminal;
  terminal.waiting(`Connecting to ${api.url}`);
  // With --types, the check reads the log with them: a pattern the server refuses is said in full there,
  // where the WebSocket could say it only in a close reason, cut at 123 bytes.
  await (flags.types !== undefined ? api.get(`/v1/events?${new URLSearchParams({ types: flags.types.join(','), limit: '1' })}`) : api.check());

  const forwarder = new WebhookForwarder({
    url: target,
    secret,
    report: (attempt) => {
      if (!flags.json) return terminal.print(attemptLine(attempt, out));
      const { event, ...rest } = attempt;
      terminal.print(JSON.stringify({ time: new Date().toISOString(), seq: event.seq, type: event.type, id: event.id, ...rest }));
    },
  });
  // The connections the socket opens, so that a stop waits for the last one to close (its acknowledgements sent).
  const connections = new Set<WebSocket>();
  class TrackedWebSocket extends WebSocket {
    constructor(url: string, protocols: string | string[]) {
      super(url, protocols);
      connections.add(this);
      this.once('close', () => connections.delete(this));
    }
  }
  const socket = new HeraldSocket({ url: apiUrl(api.url, '/v1/ws'), token: api.key, WebSocket: TrackedWebSocket, maxDelay: 5_000 });
  const source = flags.subscription !== undefined ? `subscription ${flags.subscription}` : (flags.types ?? ['**']).join(', ');
  let stopping = false;
  let ready = false;

  const failed = new Promise<never>((_, reject) => {
    socket.on('close', ({ code, reason, reconnecting, delay }) => {
      if (stopping) return;
      if (!reconnecting) return reject(closeError(code, reason));
      terminal.waiting(err.yellow(`Connection lost (${code}${reason ? ` ${reason}` : ''}); reconnecting in ${Math.round((delay ?? 0) / 100) / 10} s`), { logged: true });
    });
    socket.on('error', ({ code, message, subscription }) => {
      if (subscription && !subscription.active) reject(new CliError(code, message));
      else terminal.note(err.yellow(`${code}: ${message}`));
    });
  });
  // The server resets a subscription and replays what it missed before it confirms it: the reset is said, and the
  // replayed events forwarded, after the line that confirmation brings (handlers run one at a time, so the first waits).
  let reset: { reason: string; after: number; oldest?: number } | undefined;
  let confirm = () => {};
  const confirmed = new Promise<void>((resolve) => {
    confirm = resolve;
  });
  socket.on('reset', ({ reason, after, oldest }) => {
    reset = { reason, after, ...(oldest !== undefined ? { oldest } : {}) };
  });
  socket.on('subscribed', ({ after }) => {
    terminal.doneWaiting();
    if (ready) terminal.note(err.green(`Reconnected; resuming after #${after}`));
    else if (flags.json) terminal.print(JSON.stringify({ ready: true, source, forwardTo: target, secret, after }));
    else {
      terminal.note(`${err.green('Ready.')} Forwarding ${err.cyan(source)} to ${err.bold(target)} (Ctrl-C to stop)`);
      terminal.note(`Webhook signing secret: ${err.bold(secret)}`);
    }
    ready = true;
    if (reset !== undefined) {
      if (flags.json) terminal.print(JSON.stringify({ time: new Date().toISOString(), reset: true, ...reset }));
      else terminal.note(err.yellow(resetNote(reset.reason, reset.after, reset.oldest)));
      reset = undefined;
    }
    confirm();
  });
  const handle = async (event: DeliveredEvent) => {
    await confirmed;
    await forwarder.forward(event);
  };
  if (flags.subscription !== undefined) socket.subscribe({ subscription: flags.subscription }, handle);
  else socket.subscribe(flags.types ?? ['**'], handle);

  try {
    await Promise.race([shutdownSignal(), failed]);
  } finally {
    stopping = true;
    socket.close();
    await Promise.race([Promise.all([...connections].map((connection) => once(connection, 'close'))), new Promise((resolve) => setTimeout(resolve, 2_000))]);
  }
}
