import type { HeraldEvent, Transport } from '@herald/core';
import type { HeraldOptions } from '@herald/server';
import { startTestApp, type TestApp } from '@herald/testkit';
import { type PollOptions, type PollTransport, poll } from './poll-transport.js';

/** What one poll got: the status, the content type and the JSON body. */
export interface PollReply {
  status: number;
  contentType: string | null;
  body: any;
}

/** How a poll is asked besides its query and credential. */
export interface PollInit {
  /** @default 'GET' */
  method?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A {@link PollReply} with every header of the answer. */
export interface PollAnswerWithHeaders extends PollReply {
  headers: Headers;
}

/** A test server with the poll transport, and a way to poll it as a client would. */
export interface PollApp extends TestApp {
  transport: PollTransport;
  /** `GET /v1/poll` with `query` (values as they go in the URL), authorised with `credential` (the admin key by default). */
  poll(query: Record<string, string>, credential?: string, signal?: AbortSignal): Promise<PollReply>;
  /** `GET /v1/poll` (or `init.method`) with `query` and `init`'s headers, authorised with `credential`: the answer with its headers. */
  pollWith(query: Record<string, string>, credential: string, init?: PollInit): Promise<PollAnswerWithHeaders>;
  /** A stream token issued with `key`. */
  streamToken(key: string, body?: Record<string, unknown>): Promise<string>;
  publish(type: string, n: number, consumer?: string): Promise<HeraldEvent>;
}

export async function startPollApp(options: PollOptions = {}, heraldOptions: Partial<HeraldOptions> = {}, more: Transport[] = []): Promise<PollApp> {
  const transport = poll(options);
  const app = await startTestApp([transport, ...more], heraldOptions);
  return {
    ...app,
    transport,
    async poll(query, credential = app.adminKey, signal) {
      const { status, contentType, body } = await askPoll(app.baseUrl, query, credential, signal ? { signal } : {});
      return { status, contentType, body };
    },
    pollWith: (query, credential, init = {}) => askPoll(app.baseUrl, query, credential, init),
    async streamToken(key, body = {}) {
      const { status, body: answer } = await app.api('POST', '/v1/stream-tokens', body, key);
      if (status !== 201) throw new Error(`issuing a stream token answered ${status}: ${JSON.stringify(answer)}`);
      return answer.token as string;
    },
    async publish(type, n, consumer) {
      const { event } = await app.herald.publish({ type, data: { n }, ...(consumer !== undefined ? { consumer } : {}) } as never);
      return event;
    },
  };
}

async function askPoll(baseUrl: string, query: Record<string, string>, credential: string, init: PollInit): Promise<PollAnswerWithHeaders> {
  const url = `${baseUrl}/v1/poll?${new URLSearchParams(query)}`;
  const response = await fetch(url, { ...init, headers: { ...init.headers, authorization: `Bearer ${credential}` } });
  const text = await response.text();
  return { status: response.status, contentType: response.headers.get('content-type'), headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

export const seqs = (events: readonly { seq: number }[]) => events.map((event) => event.seq);
