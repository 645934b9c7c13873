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

/** `herald subscriptions list`: `GET /v1/subscriptions`. */
export async function listSubscriptions(flags: ServerOptions): Promise<void> {
  terminal.printJson(await new HeraldApi(flags).get('/v1/subscriptions'));
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
