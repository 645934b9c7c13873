import { errorCode } from './sql-flavor.js';

/** An error's message, followed by its `code` when the message does not say it. */
export function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = errorCode(error);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
