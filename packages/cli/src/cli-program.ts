import { createRequire } from 'node:module';
import { Command, InvalidArgumentError } from 'commander';
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

/** The `herald` command line. Each command module is imported when it runs, so that a quick `trigger` never loads the server. */
function createProgram(): Command {
  const program = new Command('herald')
    .description('Herald: run a server, and develop webhook and streaming consumers locally.')
    .version(version)
    .configureOutput({ outputError: (text, write) => write(terminal.err.red(text)) });

  program
    .command('serve')
    .description('run a Herald server from herald.config.{ts,js,json}, or from the environment (PORT, HERALD_DATABASE, ...)')
    .option('-c, --config <file>', 'the config file (default: herald.config.ts, .mts, .js, .mjs or .json in this directory)')
    .option('-p, --port <port>', 'the port to listen on (over the config and PORT)', port)
    .option('--database <url>', 'a SQLite file, :memory: or a postgres:// URL (over the config and HERALD_DATABASE)')
    .action(async (flags) => (await import('./commands/serve-command.js')).serve(flags));

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
