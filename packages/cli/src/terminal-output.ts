import picocolors from 'picocolors';
import yoctoSpinner, { type Spinner } from 'yocto-spinner';

/** picocolors' formatters; each is the identity when colours are off. */
export type Colors = ReturnType<typeof picocolors.createColors>;

type Env = Readonly<Record<string, string | undefined>>;

/** Colours for `stream`: never with `NO_COLOR`, always with `FORCE_COLOR`, else only on a terminal. */
function colorsFor(stream: { isTTY?: boolean }, env: Env): Colors {
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  const enabled = !env.NO_COLOR && (forced || (stream.isTTY === true && env.TERM !== 'dumb'));
  return picocolors.createColors(enabled);
}

/**
 * Where the command writes: results on stdout, messages for people on stderr, and a spinner on stderr
 * while something waits, only when stderr is an interactive terminal.
 */
export class Terminal {
  /** Colours for what goes to stdout. */
  readonly out: Colors;
  /** Colours for what goes to stderr. */
  readonly err: Colors;
  readonly #stdout: NodeJS.WriteStream;
  readonly #stderr: NodeJS.WriteStream;
  readonly #interactive: boolean;
  #spinner: Spinner | undefined;

  constructor(stdout: NodeJS.WriteStream, stderr: NodeJS.WriteStream, env: Env) {
    this.#stdout = stdout;
    this.#stderr = stderr;
    this.out = colorsFor(stdout, env);
    this.err = colorsFor(stderr, env);
    this.#interactive = stderr.isTTY === true && env.TERM !== 'dumb' && !env.CI;
  }

  /** A line of output (stdout). */
  print(line: string): void {
    this.#stdout.write(`${line}\n`);
  }

  /** An API answer, for scripts: indented JSON (stdout). */
  printJson(value: unknown): void {
    this.print(JSON.stringify(value, null, 2));
  }

  /** A line for people (stderr). */
  note(line: string): void {
    this.#stderr.write(`${line}\n`);
  }

  /**
   * Shows a spinner saying `text` on stderr until {@link doneWaiting}; a second call changes its text.
   * Only on an interactive terminal; elsewhere nothing, or with `logged`, the text as a line on stderr.
   */
  waiting(text: string, { logged = false } = {}): void {
    if (!this.#interactive) {
      if (logged) this.note(text);
    } else if (this.#spinner) this.#spinner.text = text;
    // While it spins, Ctrl-C clears it and brings the cursor back before the process ends (130).
    else this.#spinner = yoctoSpinner({ text, stream: this.#stderr }).start();
  }

  /** Removes the spinner, if one shows. */
  doneWaiting(): void {
    this.#spinner?.stop();
    this.#spinner = undefined;
  }
}

/** The one terminal of this process. */
export const terminal = new Terminal(process.stdout, process.stderr, process.env);
