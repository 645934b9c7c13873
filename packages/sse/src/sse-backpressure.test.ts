import { once } from 'node:events';
import { connect } from 'node:net';
import type { HeraldEvent } from '@herald/core';
import { recordingLogger, waitFor } from '@herald/testkit';
import { expect, it } from 'vitest';
import { closedAfterEach, collectEvents, eventSourceWithKey, opened } from './stream-app.test-support.js';

const limit = 256 * 1024;
const text = 'x'.repeat(64 * 1024);

const { start, track } = closedAfterEach();

it('cuts off a reader that stops reading at the buffer limit, while another keeps receiving', async () => {
  const logger = recordingLogger();
  const app = await start({ maxBufferedBytes: limit }, [], logger);
  const key = await app.consumerKey('acme');
  const { port } = new URL(app.baseUrl);

  // The slow reader: a raw HTTP request whose socket stops reading once the stream has begun.
  const reader = connect(Number(port), '127.0.0.1');
  track({ close: () => reader.destroy() });
  let received = '';
  reader.setEncoding('utf8');
  reader.on('data', (chunk: string) => {
    received += chunk;
  });
  reader.write(`GET /v1/stream?types=blob.created HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\nAccept: text/event-stream\r\n\r\n`);
  await waitFor(() => received.includes('event: ready'), 'the slow stream to start');
  reader.pause();
  await waitFor(() => app.sse.connections === 1, 'the slow stream to be registered');
  const serverSide = [...app.sockets].find((socket) => socket.remotePort === reader.localPort);
  if (!serverSide) throw new Error('the server side of the slow connection was not found');
  let cutOffAfter: number | undefined;

  const fast = track(eventSourceWithKey(`${app.baseUrl}/v1/stream?types=blob.created`, key));
  const events = collectEvents(fast, ['blob.created']);
  await opened(fast);
  const published: HeraldEvent[] = [];
  serverSide.once('close', () => {
    cutOffAfter = published.length;
  });
  const startedAt = Date.now();
  // Enough to fill the kernel's socket buffers on both ends, then the limit: at most 1,000 × 64 KiB.
  for (let n = 0; n < 1000 && (cutOffAfter === undefined || n < cutOffAfter + 20); n++) {
    published.push((await app.herald.publish({ type: 'blob.created', data: { text: `${n}:${text}` } })).event);
  }
  const publishMs = Date.now() - startedAt;
  expect(cutOffAfter, 'the slow reader was never cut off').toBeDefined();
  await waitFor(() => events.length === published.length, `all ${published.length} events at the fast reader`, 30_000);
  expect(events.map((event) => event.id)).toEqual(published.map((event) => event.id));
  expect(app.sse.connections).toBe(1);

  const cut = logger.entries.find((entry) => entry.level === 'warn' && typeof entry.fields.bufferedBytes === 'number')?.fields;
  expect(cut, 'the cut-off was not logged').toBeDefined();
  expect(cut?.bufferedBytes as number).toBeGreaterThan(limit);
  // Bounded: over the limit by at most the one frame whose write crossed it.
  expect(cut?.bufferedBytes as number).toBeLessThan(limit + 70 * 1024);

  // What reached the slow reader is a gap-free prefix, then the end of the stream.
  reader.resume();
  if (!reader.closed) await once(reader, 'close');
  const seqs = [...received.matchAll(/^id: (\d+)\nevent: blob\.created$/gm)].map((match) => Number(match[1]));
  expect(seqs.length).toBeLessThan(published.length);
  expect(seqs).toEqual(published.slice(0, seqs.length).map((event) => event.seq));
  expect(publishMs).toBeLessThan(20_000);
}, 60_000);
