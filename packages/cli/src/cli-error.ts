/**
 * An error the `herald` command reports in one line on stderr before it exits with a non-zero code.
 * `code` is stable (`unreachable`, `unauthorized`, `unknown-event-type`, a problem type of the server's
 * answer...); `status` is the HTTP status of that answer when there was one, and `problem` its body.
 *
 * Not a `HeraldError`: that lives in `@herald/core`, whose entry point loads the SQL store, and the
 * commands of a consumer (trigger, listen, tail...) start in half the time without it.
 */
export class CliError extends Error {
  override readonly name: string = 'CliError';
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly problem?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
  }
}

/** One line: the message of any error, its line breaks folded. */
export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
