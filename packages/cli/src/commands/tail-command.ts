import { type DeliveredEvent, type EventStream, openEventStream } from '@herald/client';
import { EventSource, type FetchLike } from 'eventsource';
import { CliError } from '../cli-error.js';
import { HeraldApi, responseError, type ServerOptions, unreachableReason } from '../herald-api.js';
import { shutdownSignal } from '../shutdown-signal.js';
import { resetNote } from '../stream-reset.js';
import { terminal } from '../terminal-output.js';

/** `herald tail`'s flags. */
export interface TailFlags extends ServerOptions {
  /** @default ['**'] */
  types?: string[];
  /** Start after this seq (replaying the log from there); without it, from now. */
  after?: number;
  /** Print each envelope as a JSON line. */
  json?: boolean;
}

/** `herald tail`: prints events as they arrive over SSE, one line each, until Ctrl-C. */
export async function tail(flags: TailFlags): Promise<void> {
  const api = new HeraldApi(flags);
  const { out, err } = terminal;
  const types = flags.types ?? ['**'];
  terminal.waiting(`Connecting to ${api.url}`);
  await api.check();

  // Why the last connection attempt failed: the EventSource itself only says that it did.
  let failure: CliError | undefined;
  const fetchWithKey: FetchLike = async (url, init) => {
    try {
      const response = await fetch(url, { ...init, headers: { ...init.headers, authorization: `Bearer ${api.key}` } });
      failure = response.ok ? undefined : await responseError(response.clone());
      return response;
    } catch (error) {
      failure = new CliError('unreachable', `cannot reach Herald at ${api.url}: ${unreachableReason(error)}`, 503);
      throw error;
    }
  };
  let opened = false;
  let stream: EventStream | undefined;
  const closed = new Promise<never>((_, reject) => {
    stream = openEventStream(
      { url: api.url, types, ...(flags.after !== undefined ? { after: flags.after } : {}), EventSource, init: { fetch: fetchWithKey } },
      {
        open() {
          terminal.doneWaiting();
          if (opened) return terminal.note(err.green('Reconnected'));
          opened = true;
          terminal.note(`${err.green('Tailing')} ${err.cyan(types.join(', '))} on ${err.bold(api.url)} (Ctrl-C to stop)`);
        },
        event(event: DeliveredEvent) {
          if (flags.json) return terminal.print(JSON.stringify(event));
          const time = new Date(event.time).toTimeString().slice(0, 8);
          terminal.print(`${out.dim(time)}  ${out.bold(`#${event.seq}`)}  ${out.cyan(event.type)}  ${JSON.stringify(event.data)}`);
        },
        reset({ reason, latest, oldest }) {
          terminal.note(err.yellow(resetNote(reason, latest, oldest)));
        },
        error({ closed: forGood }) {
          if (forGood) reject(failure ?? new CliError('disconnected', 'the stream was closed', 502));
          else terminal.waiting(err.yellow('Connection lost; reconnecting'), { logged: true });
        },
      },
    );
  });
  try {
    await Promise.race([shutdownSignal(), closed]);
  } finally {
    stream?.close();
  }
}
