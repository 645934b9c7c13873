const lineBreak = /\r\n|\r|\n/;
const notInAField = /[\r\n\0]/;

/** The fields of one server-sent event, as the WHATWG `text/event-stream` format writes them. */
export interface SseFrame {
  /** Becomes the client's last event ID (`Last-Event-ID` on reconnect). */
  id?: string | number;
  /** The event name; absent dispatches a plain `message`. */
  event?: string;
  /** Split into one `data:` line per line break, which the client joins again with `\n`. */
  data: string;
  /** The reconnection delay the client should use, in ms. */
  retry?: number;
}

function field(name: string, value: string): string {
  if (notInAField.test(value)) throw new Error(`An SSE ${name} cannot contain CR, LF or NUL: ${JSON.stringify(value)}`);
  return value;
}

/** One event, ending with the blank line that dispatches it. */
export function encodeFrame(frame: SseFrame): string {
  let text = '';
  if (frame.retry !== undefined) text += `retry: ${Math.max(0, Math.trunc(frame.retry))}\n`;
  if (frame.id !== undefined) text += `id: ${field('id', String(frame.id))}\n`;
  if (frame.event !== undefined) text += `event: ${field('event', frame.event)}\n`;
  for (const line of frame.data.split(lineBreak)) text += `data: ${line}\n`;
  return `${text}\n`;
}

/** A comment, which clients ignore: keeps idle connections (and the proxies on the way) open. */
export function encodeComment(text: string): string {
  return `${text
    .split(lineBreak)
    .map((line) => `: ${line}\n`)
    .join('')}\n`;
}
