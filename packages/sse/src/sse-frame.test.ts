import { describe, expect, it } from 'vitest';
import { encodeComment, encodeFrame } from './sse-frame.js';
import { MalformedLastEventIdError, parseLastEventId } from './stream-request.js';

describe('encodeFrame', () => {
  it('writes id, event and data, and the blank line that dispatches them', () => {
    expect(encodeFrame({ id: 7, event: 'order.created', data: '{"a":1}' })).toBe('id: 7\nevent: order.created\ndata: {"a":1}\n\n');
    expect(encodeFrame({ retry: 2500, data: 'x' })).toBe('retry: 2500\ndata: x\n\n');
  });

  it('splits data on every kind of line break', () => {
    expect(encodeFrame({ data: 'a\nb\r\nc\rd' })).toBe('data: a\ndata: b\ndata: c\ndata: d\n\n');
    expect(encodeFrame({ data: '' })).toBe('data: \n\n');
    expect(encodeFrame({ data: 'end\n' })).toBe('data: end\ndata: \n\n');
  });

  it('refuses CR, LF and NUL in id and event', () => {
    for (const bad of ['a\nb', 'a\rb', 'a\0b']) {
      expect(() => encodeFrame({ id: bad, data: '' })).toThrow(/id/);
      expect(() => encodeFrame({ event: bad, data: '' })).toThrow(/event/);
    }
  });

  it('writes comments one line at a time', () => {
    expect(encodeComment('keep-alive')).toBe(': keep-alive\n\n');
    expect(encodeComment('a\nb')).toBe(': a\n: b\n\n');
  });
});

describe('parseLastEventId', () => {
  it('reads seqs and treats absent or empty as no position', () => {
    expect(parseLastEventId('0', 'x')).toBe(0);
    expect(parseLastEventId('42', 'x')).toBe(42);
    expect(parseLastEventId(undefined, 'x')).toBeUndefined();
    expect(parseLastEventId('', 'x')).toBeUndefined();
  });

  it.each(['abc', '-1', '1.5', ' 1', '1e3', '99999999999999999', '9007199254740993'])('refuses %j with a 400', (value) => {
    expect(() => parseLastEventId(value, 'x')).toThrow(MalformedLastEventIdError);
  });

  it('refuses a repeated parameter', () => {
    expect(() => parseLastEventId(['1', '2'], 'x')).toThrow(MalformedLastEventIdError);
  });
});
