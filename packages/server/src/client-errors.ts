import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Problem } from '@herald/core';

const problem = (status: number, code: string, title: string, detail: string): Problem => ({ type: `urn:herald:problem:${code}`, title, status, detail });

/** What Node's HTTP parser could not read, by the code of its error; any other is a 400. */
const unreadable: Record<string, Problem> = {
  HPE_HEADER_OVERFLOW: problem(
    431,
    'headers-too-large',
    'Request header fields too large',
    "The request line and headers are over the server's limit (Node's --max-http-header-size, 16 KiB by default): a long query, such as a large filter, belongs in a subscription's body",
  ),
  HPE_CHUNK_EXTENSIONS_OVERFLOW: problem(413, 'chunk-extensions-too-large', 'Chunk extensions too large', 'The chunk extensions of the request body are over the limit'),
  ERR_HTTP_REQUEST_TIMEOUT: problem(408, 'request-timeout', 'Request timeout', 'The request did not arrive in full in time'),
};

const malformed = problem(400, 'malformed-request', 'Malformed request', 'The request could not be read as HTTP');

/**
 * A `clientError` listener for a `node:http` server: answers a request that Node's parser refused (a request
 * line or headers over its limit: 431; any other it cannot read: 400) as problem+json and closes the
 * connection, where Node answers with no body. `herald.listen()` adds it; add it to a server of your own with
 * `server.on('clientError', answerClientError)`.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  // Node's own check before it answers: a response already under way on this connection would be cut into.
  const responding = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (error.code === 'ECONNRESET' || !socket.writable || responding) {
    socket.destroy();
    return;
  }
  const answer = (error.code !== undefined ? unreadable[error.code] : undefined) ?? malformed;
  const body = JSON.stringify(answer);
  socket.end(
    `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\nConnection: close\r\n` +
      `Content-Type: application/problem+json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
