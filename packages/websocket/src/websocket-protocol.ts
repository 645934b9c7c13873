import { eventEnvelopeSchema, eventFilterSchema, eventTypePattern, type HeraldEvent, type Issue, inputError, type TransportFrames, toIssues } from '@herald/core';
import { z } from 'zod';
import { encodeTextFrame } from './shared-frames.js';

/**
 * The wire protocol `herald.v1`, in one place: the subprotocol, every client message as a zod
 * schema, the one function that parses them, the close codes, and the server messages.
 * docs/protocol/websocket.md describes it for people.
 */
export const subprotocol = 'herald.v1';

/** How the server ends a connection. 1009 (frame over `maxPayload`) and 1007 (text that is not UTF-8) come from `ws` itself. */
export enum CloseCode {
  /** A client closed normally. */
  Normal = 1000,
  /** The server is stopping; reconnect (to another node, or later). */
  GoingAway = 1001,
  /** A text frame that is not valid UTF-8 (sent by `ws`). */
  InvalidPayload = 1007,
  /** A frame over `maxPayload` (sent by `ws`). */
  MessageTooBig = 1009,
  /** The key (or token) already holds the server's `maxConnectionsPerKey` connections, every transport together; reconnect later. */
  TryAgainLater = 1013,
  /** Not JSON, a binary frame, an unknown message type, or fields that do not fit the message. */
  BadMessage = 4400,
  /** No valid credential: a bad, revoked or expired token, or a message other than `auth` before `ready`. */
  Unauthorized = 4401,
  /** A token refresh for another consumer, or a scope that no longer covers the open subscriptions. */
  Forbidden = 4403,
  /** No `auth` message within `authTimeout` of the upgrade. */
  AuthTimeout = 4408,
  /** `subscribe` with an id this connection already uses. */
  DuplicateSubscription = 4409,
  /** The send buffer went over `maxBufferedAmount`: the client reads too slowly. */
  TooSlow = 4429,
}

/** The `code` of a recoverable `error` message; the connection stays open. */
export type ErrorCode =
  /** `unsubscribe` or `ack` naming a subscription id this connection does not have. */
  | 'unknown-subscription'
  /** `ack` on a subscription that is not attached to a durable one. */
  | 'not-durable'
  /** `ack` of a `seq` this connection has not delivered on the subscription. */
  | 'ack-ahead'
  /** A pattern outside the stream token's `types`. */
  | 'forbidden'
  /** A type or pattern that matches no event type in the catalog (a typo, most likely). */
  | 'unknown-event-type'
  /** No durable subscription with that id that this consumer may reach. */
  | 'subscription-not-found'
  /** The durable subscription belongs to another transport. */
  | 'wrong-transport'
  /** The connection already has `maxSubscriptions` subscriptions. */
  | 'too-many-subscriptions'
  /** The server could not read the subscription or the log for the replay (its database is unavailable for now); subscribe again. */
  | 'unavailable'
  /** A `subscribe` whose `filter` does not fit (an unknown operator or path, a wrong operand, too deep): that subscription is refused. */
  | 'invalid-filter'
  /** A `subscribe` with a type or pattern that is not one (`order..x`, `**.created`): that subscription is refused. */
  | 'invalid-pattern'
  /**
   * A `subscribe` whose other fields do not fit (over 100 types, an `after` that is not a seq, a field it does
   * not have, …): that subscription is refused.
   */
  | 'invalid-subscribe';

/** Patterns one `subscribe` may list in `types`. */
const maxSubscribeTypes = 100;
/** Characters of a subscription id: the `id` of a `subscribe`, or the durable subscription it names. */
const maxSubscriptionIdLength = 128;

const idLength = `must be 1 to ${maxSubscriptionIdLength} characters`;
const subscriptionId = z.string().min(1, idLength).max(maxSubscriptionIdLength, idLength).describe('The client’s name for this subscription on the connection');
const seqRange = `must be a seq: a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`;
const seq = z.number().int(seqRange).nonnegative(seqRange).max(Number.MAX_SAFE_INTEGER, seqRange);
const typesCount = `must list 1 to ${maxSubscribeTypes} event types and patterns`;

const authMessage = z.strictObject({ type: z.literal('auth'), token: z.string().max(4096).describe('A stream token (`hs_...`) or an API key; an empty one is a bad credential (4401)') });
const subscribeMessage = z
  .strictObject({
    type: z.literal('subscribe'),
    id: subscriptionId,
    types: z.array(eventTypePattern).min(1, typesCount).max(maxSubscribeTypes, typesCount).optional().describe('Event types and patterns (ad hoc); or give `subscription`'),
    subscription: z.string().min(1, idLength).max(maxSubscriptionIdLength, idLength).optional().describe('Attach to a durable subscription by id; the server keeps its cursor'),
    after: seq.optional().describe('Resume after this seq'),
    filter: eventFilterSchema.optional(),
  })
  .refine((message) => (message.types === undefined) !== (message.subscription === undefined), {
    message: 'give either types or subscription',
    path: ['types'],
  });
const unsubscribeMessage = z.strictObject({ type: z.literal('unsubscribe'), id: subscriptionId });
const ackMessage = z.strictObject({ type: z.literal('ack'), id: subscriptionId, seq: seq.describe('Advances a durable subscription’s cursor') });
const pingMessage = z.strictObject({ type: z.literal('ping') });
const pongMessage = z.strictObject({ type: z.literal('pong') });

const clientMessages = {
  auth: authMessage,
  subscribe: subscribeMessage,
  unsubscribe: unsubscribeMessage,
  ack: ackMessage,
  ping: pingMessage,
  pong: pongMessage,
} as const;

export type AuthMessage = z.infer<typeof authMessage>;
export type SubscribeMessage = z.infer<typeof subscribeMessage>;
export type UnsubscribeMessage = z.infer<typeof unsubscribeMessage>;
export type AckMessage = z.infer<typeof ackMessage>;
/** Every message a client may send. */
export type ClientMessage = { [K in keyof typeof clientMessages]: z.infer<(typeof clientMessages)[K]> }[keyof typeof clientMessages];

/**
 * What {@link parseClientMessage} makes of a frame. `refused` names a `subscribe` that carries a usable `id`
 * but does not fit otherwise: that subscription is refused, the connection goes on.
 */
export type ParsedClientMessage =
  | { ok: true; message: ClientMessage }
  | { ok: false; reason: string; issues?: Issue[]; refused?: { id: string; code: 'invalid-filter' | 'invalid-pattern' | 'invalid-subscribe' } };

/** Validates one frame from a client: a JSON text frame holding one of the client messages. */
export function parseClientMessage(data: string | Buffer | ArrayBuffer | Buffer[], isBinary: boolean): ParsedClientMessage {
  if (isBinary) return { ok: false, reason: 'binary frames are not part of herald.v1; send JSON text' };
  let value: unknown;
  try {
    value = JSON.parse(typeof data === 'string' ? data : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(toBuffers(data)).toString('utf8'));
  } catch {
    return { ok: false, reason: 'the message is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'the message must be a JSON object' };
  const type = (value as { type?: unknown }).type;
  if (type === undefined) return { ok: false, reason: `a message needs a "type": one of ${Object.keys(clientMessages).join(', ')}` };
  const schema = typeof type === 'string' && Object.hasOwn(clientMessages, type) ? clientMessages[type as keyof typeof clientMessages] : undefined;
  if (!schema) return { ok: false, reason: `unknown message type ${JSON.stringify(type)}` };
  const parsed = schema.safeParse(value, { error: inputError });
  if (!parsed.success) {
    const issues = toIssues(parsed.error.issues);
    const first = issues[0];
    const reason = `invalid ${type} message${first ? `: ${[...first.path].join('.') || '(root)'} ${first.message}` : ''}`;
    const { id, types } = value as { id?: unknown; types?: unknown };
    // Without an id to answer with, a refusal could not say which subscribe it refuses.
    const usable = type === 'subscribe' ? subscriptionId.safeParse(id) : undefined;
    if (!usable?.success) return { ok: false, reason, issues };
    const refused = (code: 'invalid-filter' | 'invalid-pattern' | 'invalid-subscribe', text = reason): ParsedClientMessage => ({
      ok: false,
      reason: text,
      issues,
      refused: { id: usable.data, code },
    });
    if (issues.every((issue) => issue.path[0] === 'filter')) return refused('invalid-filter');
    const patternText = (issue: Issue) => (Array.isArray(types) && issue.path[0] === 'types' && typeof issue.path[1] === 'number' ? types[issue.path[1]] : undefined);
    if (issues.every((issue) => typeof patternText(issue) === 'string')) {
      return refused('invalid-pattern', `invalid subscribe message: types.${first?.path[1]} ${JSON.stringify(first && patternText(first))} ${first?.message}`);
    }
    return refused('invalid-subscribe');
  }
  return { ok: true, message: parsed.data as ClientMessage };
}

function toBuffers(data: ArrayBuffer | Buffer[]): Buffer[] {
  return Array.isArray(data) ? data : [Buffer.from(data)];
}

/** The frames of herald.v1, for the AsyncAPI document: the client's as validated, the server's as built by {@link serverMessage}. */
export const frames = {
  client: clientMessages,
  server: {
    ready: z.object({
      type: z.literal('ready'),
      consumer: z.string().nullable(),
      expiresAt: z.string().optional(),
      maxPayload: z.number().int().positive().describe('The largest message the server takes, in bytes of UTF-8 (its `maxPayload`): one over it closes the connection with 1009'),
    }),
    subscribed: z.object({ type: z.literal('subscribed'), id: subscriptionId, after: seq }),
    event: z.object({ type: z.literal('event'), id: subscriptionId, event: eventEnvelopeSchema }),
    reset: z.object({
      type: z.literal('reset'),
      id: subscriptionId,
      reason: z.enum(['ahead', 'expired']).describe('The resume position is past the log’s end, or older than the log keeps'),
      after: seq.describe('Delivery goes on after this seq'),
      oldest: seq.optional().describe('`expired`: the oldest seq the log holds in full; the events between `after` and it were pruned'),
    }),
    error: z.object({ type: z.literal('error'), id: subscriptionId.optional(), code: z.string(), message: z.string() }),
    ping: pingMessage,
    pong: pongMessage,
  },
} satisfies TransportFrames;

/** The server messages as JSON text. Events go through {@link EventFrames}, which serialises each envelope once. */
export const serverMessage = {
  ready: (consumer: string | undefined, maxPayload: number, expiresAt?: string) =>
    JSON.stringify({ type: 'ready', consumer: consumer ?? null, ...(expiresAt !== undefined ? { expiresAt } : {}), maxPayload }),
  subscribed: (id: string, after: number) => JSON.stringify({ type: 'subscribed', id, after }),
  reset: (id: string, reason: 'ahead' | 'expired', after: number, oldest?: number) =>
    JSON.stringify({ type: 'reset', id, reason, after, ...(oldest !== undefined ? { oldest } : {}) }),
  error: (code: ErrorCode, message: string, id?: string) => JSON.stringify({ type: 'error', ...(id !== undefined ? { id } : {}), code, message }),
  pong: () => '{"type":"pong"}',
} as const;

/** A close reason fits in a control frame: at most 123 bytes of UTF-8. */
export function closeReason(text: string): string {
  if (Buffer.byteLength(text) <= 123) return text;
  let cut = text.slice(0, 120);
  while (Buffer.byteLength(`${cut}...`) > 123) cut = cut.slice(0, -1);
  return `${cut}...`;
}

/**
 * Serialises each event once and each `event` frame once per subscription id, so fan-out to many
 * connections that use the same id (the usual case: clients run the same code) costs one
 * `JSON.stringify` and one Buffer per event, like a raw broadcast. The Buffer is the whole WebSocket
 * text frame, header included, ready to be written as it is (see `SharedBatches`).
 */
export class EventFrames {
  readonly #frames = new WeakMap<HeraldEvent, { json: string; byId: Map<string, Buffer> }>();
  readonly #idsPerEvent: number;

  /** @param idsPerEvent frames kept per event, one per distinct subscription id. @default 32 */
  constructor(idsPerEvent = 32) {
    this.#idsPerEvent = idsPerEvent;
  }

  /** The `event {id, event}` message as a whole unmasked text frame (its payload: `textPayload`). */
  frame(id: string, event: HeraldEvent): Buffer {
    const entry = this.#entry(event);
    let frame = entry.byId.get(id);
    if (!frame) {
      frame = encodeTextFrame(Buffer.from(`{"type":"event","id":${JSON.stringify(id)},"event":${entry.json}}`));
      if (entry.byId.size < this.#idsPerEvent) entry.byId.set(id, frame);
    }
    return frame;
  }

  #entry(event: HeraldEvent): { json: string; byId: Map<string, Buffer> } {
    let entry = this.#frames.get(event);
    if (!entry) this.#frames.set(event, (entry = { json: JSON.stringify(event), byId: new Map() }));
    return entry;
  }
}
