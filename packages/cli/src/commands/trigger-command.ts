import type { EventTypeInfo } from '@herald/core';
import { CliError, oneLine } from '../cli-error.js';
import { exampleData } from '../example-data.js';
import { HeraldApi, type ServerOptions } from '../herald-api.js';
import { terminal } from '../terminal-output.js';

/** `herald trigger`'s flags. */
export interface TriggerFlags extends ServerOptions {
  /** The event's data as JSON; without it, an example made from the type's JSON Schema. */
  data?: string;
  /** @default 1 */
  count: number;
  json?: boolean;
}

function parseData(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError('bad-input', `--data is not JSON: ${oneLine(error)}`);
  }
}

/** The type's catalog entry; an unknown type is an error that lists the known ones. */
async function eventType(api: HeraldApi, type: string): Promise<EventTypeInfo> {
  try {
    return await api.get<EventTypeInfo>(`/v1/event-types/${encodeURIComponent(type)}`);
  } catch (error) {
    if (!(error instanceof CliError) || error.status !== 404) throw error;
    const { data } = await api.get<{ data: EventTypeInfo[] }>('/v1/event-types');
    const known = data.map((info) => info.name).join(', ') || 'none yet';
    throw new CliError('unknown-event-type', `unknown event type "${type}" (the catalog has: ${known})`, 404);
  }
}

/** `herald trigger <type>`: publishes `count` events of `type`, with `--data` or made-up examples. */
export async function trigger(type: string, flags: TriggerFlags): Promise<void> {
  const given = flags.data !== undefined ? parseData(flags.data) : undefined;
  const api = new HeraldApi(flags);
  const { out } = terminal;
  terminal.waiting(`Publishing ${type}`);
  const schema = given === undefined ? (await eventType(api, type)).schema : undefined;
  for (let n = 1; n <= flags.count; n++) {
    if (flags.count > 1) terminal.waiting(`Publishing ${type} (${n} of ${flags.count})`);
    const data = schema ? await exampleData(schema) : given;
    const { id, seq } = await api.post<{ id: string; seq: number }>('/v1/events', { type, data });
    if (flags.json) terminal.print(JSON.stringify({ id, seq, type, data }));
    else terminal.print(`${out.green('✔')} ${out.bold(`#${seq}`)} ${out.cyan(type)} ${out.dim(id)} ${JSON.stringify(data)}`);
  }
}
