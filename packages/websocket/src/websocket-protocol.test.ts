import type { HeraldEvent } from '@herald/core';
import { describe, expect, it } from 'vitest';
import { outsideScope, patternCovers } from '@herald/core';
import { textPayload } from './shared-frames.js';
import { closeReason, EventFrames, parseClientMessage } from './websocket-protocol.js';

const parse = (value: unknown) => parseClientMessage(JSON.stringify(value), false);

describe('parseClientMessage', () => {
  it('accepts every client message', () => {
    const messages = [
      { type: 'auth', token: 'hk_x' },
      { type: 'subscribe', id: 's1', types: ['order.*', '**'] },
      { type: 'subscribe', id: 's1', types: ['order.created'], after: 0 },
      { type: 'subscribe', id: 's1', subscription: 'sub_1', after: 12 },
      { type: 'unsubscribe', id: 's1' },
      { type: 'ack', id: 's1', seq: 5 },
      { type: 'ping' },
      { type: 'pong' },
    ];
    for (const message of messages) expect(parse(message)).toEqual({ ok: true, message });
  });

  it('refuses what does not fit, with a reason', () => {
    const refused: [unknown, RegExp][] = [
      [{ type: 'subscribe', id: 's1' }, /give either types or subscription/],
      [{ type: 'subscribe', id: '', types: ['a'] }, /^invalid subscribe message: id/],
      [{ type: 'subscribe', id: 's1', types: [] }, /^invalid subscribe message: types/],
      [{ type: 'subscribe', id: 's1', types: ['a.**.b'] }, /^invalid subscribe message: types\.0/],
      [{ type: 'subscribe', id: 's1', types: ['a'], after: 1.5 }, /^invalid subscribe message: after must be a seq: a whole number from 0 to 9007199254740991$/],
      [{ type: 'subscribe', types: ['a'] }, /^invalid subscribe message: id required$/],
      [{ type: 'ack', id: 's1', seq: '5' }, /^invalid ack message: seq must be a number, not "5"$/],
      [{ type: 'auth' }, /^invalid auth message: token required$/],
      [{ type: 'toString' }, /^unknown message type "toString"/],
      [{ type: '__proto__' }, /^unknown message type "__proto__"/],
      [{ type: 7 }, /^unknown message type 7/],
      [{ id: 's1' }, /^a message needs a "type": one of auth, subscribe, unsubscribe, ack, ping, pong$/],
      [null, /must be a JSON object/],
      ['ping', /must be a JSON object/],
    ];
    for (const [value, reason] of refused) {
      const result = parse(value);
      expect(result.ok, JSON.stringify(value)).toBe(false);
      if (!result.ok) expect(result.reason).toMatch(reason);
    }
    expect(parseClientMessage('{', false)).toEqual({ ok: false, reason: 'the message is not JSON' });
    // A subscribe with a usable id is refused alone; without one, or another message, it is not.
    const refusedAs = (value: unknown) => {
      const result = parse(value);
      return result.ok ? undefined : result.refused;
    };
    expect(refusedAs({ type: 'subscribe', id: 's1', types: [] })).toEqual({ id: 's1', code: 'invalid-subscribe' });
    expect(refusedAs({ type: 'subscribe', id: 's1', types: ['a.**.b'] })).toEqual({ id: 's1', code: 'invalid-pattern' });
    expect(refusedAs({ type: 'subscribe', id: 's1', types: ['a'], filter: { $bad: 1 } })).toEqual({ id: 's1', code: 'invalid-filter' });
    expect(refusedAs({ type: 'subscribe', id: '', types: [] })).toBeUndefined();
    expect(refusedAs({ type: 'subscribe', id: 's'.repeat(129), types: ['a'] })).toBeUndefined();
    expect(refusedAs({ type: 'ack', id: 's1', seq: -1 })).toBeUndefined();
    expect(parseClientMessage(Buffer.from('{"type":"ping"}'), true).ok).toBe(false);
    expect(parseClientMessage(Buffer.from('{"type":"ping"}'), false)).toEqual({ ok: true, message: { type: 'ping' } });
  });
});

describe('closeReason', () => {
  it('keeps reasons within the 123 bytes a close frame allows', () => {
    expect(closeReason('short')).toBe('short');
    const long = closeReason('é'.repeat(200));
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(123);
    expect(long.endsWith('...')).toBe(true);
  });
});

describe('EventFrames', () => {
  it('builds the event message, sharing one frame per event and subscription id', () => {
    const frames = new EventFrames(2);
    const event = { seq: 1, id: 'evt_1', type: 'a.b', data: { text: '"quoted"' } } as unknown as HeraldEvent;
    const frame = frames.frame('s"1', event);
    expect(JSON.parse(textPayload(frame).toString())).toEqual({ type: 'event', id: 's"1', event });
    expect(frames.frame('s"1', event)).toBe(frame);
    expect(frames.frame('s2', event)).not.toBe(frame);
    const third = frames.frame('s3', event);
    expect(frames.frame('s3', event)).not.toBe(third);
    expect(frames.frame('s3', event).equals(third)).toBe(true);
  });
});

describe('patternCovers', () => {
  const cases: [string, string, boolean][] = [
    ['order.created', 'order.created', true],
    ['order.created', 'order.shipped', false],
    ['order.*', 'order.created', true],
    ['order.*', 'order.*', true],
    ['order.*', 'order.**', false],
    ['order.*', 'order.line.added', false],
    ['order.*', 'order', false],
    ['order.**', 'order.line.added', true],
    ['order.**', 'order.*', true],
    ['order.**', 'order.**', true],
    ['order.**', 'order.*.added', true],
    ['order.**', 'order', false],
    ['order.**', 'invoice.paid', false],
    ['**', 'order', true],
    ['**', '**', true],
    ['*.paid', 'invoice.paid', true],
    ['*.paid', '*.paid', true],
    ['invoice.paid', '*.paid', false],
    ['*', '**', false],
    ['*.*', 'a.**', false],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.*.d', false],
  ];
  for (const [scope, pattern, covered] of cases) {
    it(`${scope} ${covered ? 'covers' : 'does not cover'} ${pattern}`, () => expect(patternCovers(scope, pattern)).toBe(covered));
  }

  it('lists what a scope does not cover', () => {
    expect(outsideScope(undefined, ['**'])).toEqual([]);
    expect(outsideScope(['order.*', 'invoice.paid'], ['order.created', 'invoice.*', 'order.*'])).toEqual(['invoice.*']);
  });
});
