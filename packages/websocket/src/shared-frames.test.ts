import { describe, expect, it } from 'vitest';
import type { Writable } from 'node:stream';
import * as wsModule from 'ws';
import { encodeTextFrame, SharedBatches, textPayload } from './shared-frames.js';

/** ws's own framing, which its ESM entry exports and its types leave out. */
const { Receiver, Sender } = wsModule as unknown as {
  Receiver: new (options: { isServer: boolean }) => Writable;
  Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] };
};

/** What ws's own receiver reads from `bytes`: the text messages, in order. */
function receive(bytes: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const messages: string[] = [];
    const receiver = new Receiver({ isServer: false });
    receiver.on('message', (data: Buffer, isBinary: boolean) => messages.push(isBinary ? 'binary!' : data.toString()));
    receiver.on('error', reject);
    receiver.write(bytes, () => resolve(messages));
  });
}

describe('encodeTextFrame', () => {
  it.each([0, 1, 125, 126, 65_535, 65_536, 70_000])('frames %i bytes as ws does, and ws reads it back', async (length) => {
    const payload = Buffer.alloc(length, 'x');
    const frame = encodeTextFrame(payload);
    expect(frame.equals(Buffer.concat(Sender.frame(payload, { fin: true, mask: false, opcode: 1, readOnly: false, rsv1: false })))).toBe(true);
    expect(textPayload(frame).equals(payload)).toBe(true);
    expect(await receive(frame)).toEqual([payload.toString()]);
  });
});

describe('SharedBatches', () => {
  it('gives connections that get the same frames in one tick the same Buffer, and others their own', async () => {
    const batches = new SharedBatches();
    const [a, b, c] = ['{"n":1}', '{"n":2}', '{"n":3}'].map((text) => encodeTextFrame(Buffer.from(text))) as [Buffer, Buffer, Buffer];
    const all = batches.of([a, b, c]);
    expect(batches.of([a, b, c])).toBe(all);
    const filtered = batches.of([a, c]);
    expect(filtered).not.toBe(all);
    expect(batches.of([a, c])).toBe(filtered);
    // The same content in other Buffers (a frame that was not cached) is encoded again, and equal.
    const copy = batches.of([Buffer.from(a), b, c]);
    expect(copy).not.toBe(all);
    expect(copy.equals(all)).toBe(true);
    expect(batches.of([b])).toBe(b);
    expect(await receive(all)).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);
    expect(await receive(filtered)).toEqual(['{"n":1}', '{"n":3}']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches.of([a, b, c])).not.toBe(all);
  });
});
