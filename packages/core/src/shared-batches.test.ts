import { describe, expect, it } from 'vitest';
import { SharedBatches } from './shared-batches.js';

describe('SharedBatches', () => {
  it('gives connections that get the same frames in one tick the same Buffer, and others their own', async () => {
    const batches = new SharedBatches();
    const [a, b, c] = ['one\n', 'two\n', 'three\n'].map((text) => Buffer.from(text)) as [Buffer, Buffer, Buffer];
    const all = batches.of([a, b, c]);
    expect(all.toString()).toBe('one\ntwo\nthree\n');
    expect(batches.of([a, b, c])).toBe(all);
    const filtered = batches.of([a, c]);
    expect(filtered).not.toBe(all);
    expect(filtered.toString()).toBe('one\nthree\n');
    expect(batches.of([a, c])).toBe(filtered);
    // The same content in other Buffers (a frame that was not cached) is joined again, and equal.
    const copy = batches.of([Buffer.from(a), b, c]);
    expect(copy).not.toBe(all);
    expect(copy.equals(all)).toBe(true);
    expect(batches.of([b])).toBe(b);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches.of([a, b, c])).not.toBe(all);
  });
});
