import { describe, expect, it } from 'vitest';
import type { Writable } from 'node:stream';
import * as wsModule from 'ws';
import { encodeTextFrame, textPayload } from './shared-frames.js';

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
