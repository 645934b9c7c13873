import { describe, expect, it } from 'vitest';
import { type HeraldEvent, publishedAt } from './envelope.js';

describe('publishedAt', () => {
  it("is the event's time in ms since the epoch, the same for every call on the event", () => {
    const event: HeraldEvent = { specversion: '1.0', id: 'evt_1', seq: 1, type: 'order.created', source: '/herald', time: '2026-12-06T09:30:00.250Z', datacontenttype: 'application/json', data: {} };
    expect(publishedAt(event)).toBe(Date.UTC(2026, 11, 6, 9, 30, 0, 250));
    expect(publishedAt(event)).toBe(publishedAt({ ...event }));
  });
});
