import { createRequire } from 'node:module';
import { Command, InvalidArgumentError, Option } from 'commander';
import { oneLine } from './cli-error.js';
import { ConfigError } from './config-problems.js';
import { terminal } from './terminal-output.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

function wholeNumber(minimum: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < minimum) throw new InvalidArgumentError(`expected a whole number of at least ${minimum}`);
    return value;
  };
}

function port(text: string): number {
  const value = wholeNumber(0)(text);
  if (value > 65535) throw new InvalidArgumentError('expected a port number (0 to 65535)');
  return value;
}

/** `order.*,invoice.paid` → `['order.*', 'invoice.paid']`. */
function patterns(text: string): string[] {
  const list = text
    .split(',')
    .map((pattern) => pattern.trim())
    .filter(Boolean);
  if (list.length === 0) throw new InvalidArgumentError('expected event types or patterns, comma-separated');
  return list;
}

/** `--url` and `--key`, for every command that talks to a Herald server. */
function withServer(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'the Herald server').env('HERALD_URL').default('http://127.0.0.1:3000'))
    .addOption(new Option('--key <key>', 'an API key').env('HERALD_KEY'));
}

/** The `herald` command line. Each command module is imported when it runs, so that a quick `trigger` never loads the server. */
function createProgram(): Command {
  const program = new Command('herald')
    .description('Herald: run a server, and develop webhook and streaming consumers locally.')
    .version(version)
    .configureOutput({ outputError: (text, write) => write(terminal.err.red(text)) });

  program
    .command('serve')
    .description('run a Herald server from herald.config.{ts,mts,js,mjs,json}, or from the environment (PORT, HERALD_DATABASE, ...)')
    .option('-c, --config <file>', 'the config file (default: herald.config.ts, .mts, .js, .mjs or .json in this directory)')
    .option('-p, --port <port>', 'the port to listen on (over the config and PORT)', port)
    .option('--database <url>', 'a SQLite file, :memory: or a postgres:// URL (over the config and HERALD_DATABASE)')
    .action(async (flags) => (await import('./commands/serve-command.js')).serve(flags));

  withServer(
    program
      .command('listen')
      .description('forward events to a local endpoint as signed webhooks (Standard Webhooks), over a WebSocket')
      .requiredOption('-f, --forward-to <url>', 'the local endpoint, e.g. http://localhost:4000/webhooks')
      .addOption(new Option('-t, --types <patterns>', 'event types and patterns, comma-separated (default: every type)').argParser(patterns).conflicts('subscription'))
      .option('-s, --subscription <id>', 'follow a durable websocket subscription: events published while stopped arrive when it returns')
      .option('--secret <whsec>', 'sign with this whsec_ secret (default: a new one, printed at start)')
      .option('--json', 'print JSON lines instead of text'),
  )
    .addHelpText('after', '\nExample:\n  herald listen --forward-to localhost:4000/webhooks --types "order.*"')
    .action(async (flags) => (await import('./commands/listen-command.js')).listen(flags));

  withServer(
    program
      .command('trigger')
      .description('publish events; without --data, each is a valid example made from the type\'s JSON Schema')
      .argument('<type>', 'the event type, e.g. order.created')
      .option('-d, --data <json>', 'the event\'s data, as JSON')
      .option('-n, --count <n>', 'how many events', wholeNumber(1), 1)
      .option('--json', 'print JSON lines instead of text'),
  ).action(async (type, flags) => (await import('./commands/trigger-command.js')).trigger(type, flags));

  withServer(
    program
      .command('tail')
      .description('print events as they arrive (Server-Sent Events)')
      .option('-t, --types <patterns>', 'event types and patterns, comma-separated (default: every type)', patterns)
      .option('--after <seq>', 'replay the log after this seq first', wholeNumber(0))
      .option('--json', 'print each event as a JSON line'),
  ).action(async (flags) => (await import('./commands/tail-command.js')).tail(flags));

  const keys = program.command('keys').description('API keys (REST: /v1/keys); prints the API\'s JSON');
  withServer(
    keys
      .command('create')
      .description('make an API key; the key is shown this once')
      .addOption(new Option('--role <role>', 'what the key may do').choices(['admin', 'consumer']).makeOptionMandatory())
      .option('--consumer <id>', 'the consumer a consumer key acts for')
      .option('--name <label>', 'what the key is for, listed with it (1 to 100 characters)'),
  ).action(async (flags) => (await import('./commands/keys-command.js')).createKey(flags));
  withServer(keys.command('list').description('list the API keys: each one\'s name, who made it, when it was last used')).action(async (flags) => (await import('./commands/keys-command.js')).listKeys(flags));
  withServer(keys.command('revoke').description('revoke an API key').argument('<id>', 'the key\'s id (key_...)')).action(async (id, flags) =>
    (await import('./commands/keys-command.js')).revokeKey(id, flags),
  );

  const subscriptions = program.command('subscriptions').description('subscriptions (REST: /v1/subscriptions); prints the API\'s JSON');
  withServer(
    subscriptions
      .command('list')
      .description('list the subscriptions the key may see, every page of them')
      .option('--consumer <id>', "only this consumer's (an admin key)")
      .option('--transport <name>', 'only those of this transport')
      .option('--status <status>', 'only those in this status: active, paused, disabled or pending'),
  ).action(async (flags) => (await import('./commands/subscriptions-command.js')).listSubscriptions(flags));
  withServer(
    subscriptions
      .command('create')
      .description('make a subscription; a webhook\'s generated secret is shown this once')
      .requiredOption('--transport <name>', 'webhook, websocket, sse, ...')
      .requiredOption('-t, --types <patterns>', 'event types and patterns, comma-separated', patterns)
      .option('--config <json>', 'the transport\'s config, e.g. \'{"url":"https://example.com/hooks"}\'')
      .option('--filter <json>', 'only events that match, e.g. \'{"data.total":{"$gte":100}}\'')
      .option('--consumer <id>', 'the consumer it is for (required with an admin key)'),
  ).action(async (flags) => (await import('./commands/subscriptions-command.js')).createSubscription(flags));
  withServer(subscriptions.command('delete').description('delete a subscription').argument('<id>', 'the subscription\'s id')).action(async (id, flags) =>
    (await import('./commands/subscriptions-command.js')).deleteSubscription(id, flags),
  );
  withServer(
    subscriptions
      .command('replay')
      .description('redeliver a push subscription\'s events after a seq or since a time, in the background; or show or cancel its replay')
      .argument('<id>', 'the subscription\'s id')
      .addOption(new Option('--after <seq>', 'replay every event after this seq').argParser(wholeNumber(0)).conflicts(['since', 'status', 'cancel']))
      .addOption(new Option('--since <time>', 'replay every event published at or after this time (RFC 3339)').conflicts(['status', 'cancel']))
      .addOption(new Option('--status', 'show the running or last replay').conflicts('cancel'))
      .option('--cancel', 'cancel the running replay (the deliveries it made stay)')
      .addOption(new Option('-w, --wait', 'follow the replay until it ends, its progress on stderr; exit 1 unless it completes').conflicts('cancel')),
  ).action(async (id, flags) => (await import('./commands/subscriptions-command.js')).replaySubscription(id, flags));

  return program;
}

/** Runs the command line; every failure is one line on stderr (a config's problems, one line each) and exit code 1. */
export async function runCli(argv: readonly string[]): Promise<never> {
  try {
    await createProgram().parseAsync(argv);
    terminal.doneWaiting();
  } catch (error) {
    terminal.doneWaiting();
    terminal.note(`${terminal.err.red('herald:')} ${oneLine(error)}`);
    if (error instanceof ConfigError) for (const line of error.lines()) terminal.note(`  ${line}`);
    process.exit(1);
  }
  process.exit(0);
}
