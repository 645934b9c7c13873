/** How the WebSocket transport behaves; every option has a default. */
export interface WebSocketOptions {
  /** The upgrade path on the server. @default '/v1/ws' */
  path?: string;
  /** Largest frame a client may send, in bytes; `ws` closes with 1009 past it. @default 65536 (64 KiB) */
  maxPayload?: number;
  /** How long a connection may stay unauthenticated, in ms; then it is closed with 4408. @default 10000 */
  authTimeout?: number;
  /** Protocol-level ping interval, in ms; a peer that has not answered the previous ping is terminated. @default 25000 */
  heartbeatInterval?: number;
  /**
   * Bytes a connection may have waiting to be sent (`ws.bufferedAmount`); past it the connection is
   * closed with 4429, so a slow reader never holds more than this (plus one frame) in server memory.
   * @default 4194304 (4 MiB)
   */
  maxBufferedAmount?: number;
  /** How long a closing connection may take to flush its close frame before it is terminated, in ms. @default 2000 */
  closeTimeout?: number;
  /** Subscriptions one connection may hold at once. @default 100 */
  maxSubscriptions?: number;
  /** How often acknowledged positions are written to durable subscriptions' cursors, in ms. @default 1000 */
  cursorFlushInterval?: number;
  /**
   * How long `stop()` waits for clients to answer the 1001 close, and for the durable subscriptions still being
   * looked up (the acks sent with them move their cursors once it ends), before terminating the clients, in ms.
   * @default 2000
   */
  stopTimeout?: number;
}

export type ResolvedWebSocketOptions = Required<WebSocketOptions>;

const defaults: ResolvedWebSocketOptions = {
  path: '/v1/ws',
  maxPayload: 64 * 1024,
  authTimeout: 10_000,
  heartbeatInterval: 25_000,
  maxBufferedAmount: 4 * 1024 * 1024,
  closeTimeout: 2_000,
  maxSubscriptions: 100,
  cursorFlushInterval: 1_000,
  stopTimeout: 2_000,
};

/** Fills in the defaults and refuses values that make no sense. */
export function resolveWebSocketOptions(options: WebSocketOptions): ResolvedWebSocketOptions {
  const resolved = { ...defaults };
  for (const [name, value] of Object.entries(options) as [keyof WebSocketOptions, unknown][]) {
    if (value === undefined) continue;
    if (name === 'path') {
      if (typeof value !== 'string' || !value.startsWith('/')) throw new TypeError('websocket(): path must start with "/"');
      resolved.path = value;
    } else if ((name as string) === 'maxConnectionsPerKey') {
      throw new TypeError('websocket(): maxConnectionsPerKey is an option of createHerald now (HERALD_MAX_CONNECTIONS_PER_KEY): one limit for every transport');
    } else if (!(name in defaults)) {
      throw new TypeError(`websocket(): unknown option "${name}"`);
    } else {
      if (typeof value !== 'number' || !(value > 0)) throw new TypeError(`websocket(): ${name} must be a positive number`);
      (resolved as Record<string, unknown>)[name] = value;
    }
  }
  return resolved;
}
