import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, oneLine } from '../cli-error.js';
import { HeraldApi, type ServerOptions } from '../herald-api.js';
import { terminal } from '../terminal-output.js';

/** `herald subscriptions create`'s flags. */
export interface SubscriptionCreateFlags extends ServerOptions {
  transport: string;
  types: string[];
  /** The transport's config as JSON, e.g. `{"url":"https://example.com/hooks"}`. */
  config?: string;
  /** A filter as JSON, e.g. `{"data.total":{"$gte":100}}`. */
  filter?: string;
  /** Needed with an admin key; a consumer key implies it. */
  consumer?: string;
}

function parseJsonFlag(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError('bad-input', `--${name} is not JSON: ${oneLine(error)}`);
  }
}

/** `herald subscriptions list`'s flags: the API's filters. */
export interface SubscriptionListFlags extends ServerOptions {
  /** Only this consumer's (an admin key; a consumer key sees its own). */
  consumer?: string;
  transport?: string;
  status?: string;
}

/** `herald subscriptions list`: every page of `GET /v1/subscriptions`, printed as one list, `{ data: [...] }`. */
export async function listSubscriptions(flags: SubscriptionListFlags): Promise<void> {
  const api = new HeraldApi(flags);
  const filters = Object.entries({ consumer: flags.consumer, transport: flags.transport, status: flags.status }).filter(
    (entry): entry is [string, string] => entry[1] !== undefined,
  );
  const data: unknown[] = [];
  for (let after: string | undefined; ; ) {
    const query = new URLSearchParams(filters);
    if (after !== undefined) query.set('after', after);
    const page = await api.get<{ data: unknown[]; next?: string | null; hasMore?: boolean }>(`/v1/subscriptions${query.size > 0 ? `?${query}` : ''}`);
    data.push(...page.data);
    if (!page.hasMore || !page.next) break;
    after = page.next;
  }
  terminal.printJson({ data });
}

/** `herald subscriptions create`: `POST /v1/subscriptions`; a webhook's generated secret is in the answer, once. */
export async function createSubscription(flags: SubscriptionCreateFlags): Promise<void> {
  const body = {
    transport: flags.transport,
    types: flags.types,
    config: flags.config !== undefined ? parseJsonFlag('config', flags.config) : {},
    ...(flags.filter !== undefined ? { filter: parseJsonFlag('filter', flags.filter) } : {}),
    ...(flags.consumer !== undefined ? { consumer: flags.consumer } : {}),
  };
  terminal.printJson(await new HeraldApi(flags).post('/v1/subscriptions', body));
}

/** `herald subscriptions delete <id>`: `DELETE /v1/subscriptions/:id`. */
export async function deleteSubscription(id: string, flags: ServerOptions): Promise<void> {
  await new HeraldApi(flags).delete(`/v1/subscriptions/${encodeURIComponent(id)}`);
  terminal.note(`Deleted ${id}`);
}

/** `herald subscriptions replay`'s flags: one of `after`, `since` (start one), `status` and `cancel`. */
export interface ReplayFlags extends ServerOptions {
  after?: number;
  /** RFC 3339, e.g. `2026-12-06T09:00:00Z`. */
  since?: string;
  status?: boolean;
  cancel?: boolean;
  /** Follows the replay until it ends, its progress on stderr. */
  wait?: boolean;
}

/** A replay as `/v1/subscriptions/:id/replay` answers it (the fields the command reads). */
interface Replay {
  id: string;
  status: string;
  after: number;
  since?: string;
  until: number;
  position: number;
  replayed: number;
  error?: string;
}

/**
 * The server's 409 while a replay of the subscription runs, whose detail says to cancel it with `DELETE`: in the
 * words of this command, which follows the replay with `--status --wait` and cancels it with `--cancel`.
 */
function replayInProgress(id: string, error: CliError): CliError {
  const running = error.problem?.replay as Partial<Replay> | undefined;
  const which = running?.id !== undefined ? `replay ${running.id}` : 'a replay';
  const where = running?.position !== undefined && running.until !== undefined ? ` (at #${running.position} of #${running.until})` : '';
  const command = `herald subscriptions replay ${id}`;
  return new CliError(
    error.code,
    `${which} of ${id} is still running${where}: follow it with \`${command} --status --wait\`, or cancel it with \`${command} --cancel\` (${error.status})`,
    error.status,
    error.problem,
  );
}

/** Starts a replay, or says in the command's words that one still runs. */
async function startReplay(api: HeraldApi, id: string, path: string, body: { after: number } | { since: string }): Promise<Replay> {
  try {
    return await api.post(path, body);
  } catch (error) {
    if (error instanceof CliError && error.code === 'replay-in-progress') throw replayInProgress(id, error);
    throw error;
  }
}

/** A replay that completed with nothing sent: the log ended at its start, or no event after it was for the subscription. */
function nothingReplayed(replay: Replay): string | undefined {
  if (replay.status !== 'completed' || replay.replayed > 0) return undefined;
  if (replay.after < replay.until) {
    return `replay ${replay.id}: nothing to replay: no event from #${replay.after + 1} to #${replay.until} is of the subscription's types and passes its filter`;
  }
  const start = replay.since !== undefined ? `no event was published at or after ${replay.since}` : `there is no event after #${replay.after}`;
  return `replay ${replay.id}: nothing to replay: ${start} (the log ends at #${replay.until})`;
}

/**
 * `herald subscriptions replay <id>`: `POST /v1/subscriptions/:id/replay` (`--after`, `--since`), `GET`
 * (`--status`) or `DELETE` (`--cancel`); prints the replay. With `--wait` it follows the replay until it ends,
 * and fails unless it completed.
 */
export async function replaySubscription(id: string, flags: ReplayFlags): Promise<void> {
  const api = new HeraldApi(flags);
  const path = `/v1/subscriptions/${encodeURIComponent(id)}/replay`;
  let replay: Replay;
  if (flags.after !== undefined) replay = await startReplay(api, id, path, { after: flags.after });
  else if (flags.since !== undefined) replay = await startReplay(api, id, path, { since: flags.since });
  else if (flags.status) replay = await api.get(path);
  else if (flags.cancel) replay = await api.request('DELETE', path);
  else throw new CliError('bad-input', 'say what to do: --after <seq> or --since <time> starts a replay, --status shows it, --cancel cancels it');
  while (flags.wait && replay.status === 'running') {
    terminal.waiting(`replay ${replay.id}: every event up to #${replay.position} of #${replay.until} has its delivery (${replay.replayed} made)`, { logged: true });
    await sleep(1_000);
    replay = await api.get(path);
  }
  terminal.doneWaiting();
  terminal.printJson(replay);
  const nothing = nothingReplayed(replay);
  if (nothing !== undefined) terminal.note(terminal.err.yellow(nothing));
  if (flags.wait && replay.status !== 'completed') {
    throw new CliError(`replay-${replay.status}`, `replay ${replay.id} ${replay.status}${replay.error ? `: ${replay.error}` : ''}`);
  }
}
