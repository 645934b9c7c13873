import { describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import { startTcpRelay } from '../../testkit/src/tcp-relay.test-support.js';
import { waitFor } from '../../testkit/src/wait-for.js';
import { EventBus } from './event-bus.js';
import { defineEventType, EventCatalog } from './event-type-catalog.js';
import { recordingLogger } from '../../testkit/src/recording-logger.js';
import { memoryBroker } from './memory-broker.js';
import { RepeatedFailure } from './repeated-failure.js';
import { postgresStore } from './sql/postgres-store.js';
import { freshDatabase } from './sql/postgres.test-support.js';

describe('a failure that repeats', () => {
  it('is logged when it begins, then once a minute with its count, and once when it works again', () => {
    const logger = recordingLogger();
    let now = 0;
    const failure = new RepeatedFailure(logger, 'warn', 'polling the log failed', () => now);
    const lines = () => logger.entries.map(({ level, message, fields }) => ({ level, message, failures: fields.failures }));
    failure.succeeded();
    expect(lines()).toEqual([]);
    // Once a second for 2 minutes and a half.
    for (; now <= 150_000; now += 1_000) failure.failed(new Error('connect ECONNREFUSED'));
    failure.succeeded();
    expect(lines()).toEqual([
      { level: 'warn', message: 'polling the log failed', failures: 1 },
      { level: 'warn', message: 'polling the log failed (60 times since the last line, 61 in all)', failures: 61 },
      { level: 'warn', message: 'polling the log failed (60 times since the last line, 121 in all)', failures: 121 },
      { level: 'info', message: 'polling the log failed 151 times; it works again', failures: 151 },
    ]);
    expect(logger.entries[0]?.fields.err).toBeInstanceOf(Error);
    // A new outage begins afresh.
    logger.entries.length = 0;
    failure.failed(new Error('again'));
    failure.succeeded();
    expect(lines()).toEqual([
      { level: 'warn', message: 'polling the log failed', failures: 1 },
      { level: 'info', message: 'polling the log failed once; it works again', failures: 1 },
    ]);
  });

  it('is how the event bus tells of a database it cannot reach for a while: one line as it goes, one as it comes back', async () => {
    const { url, drop } = await freshDatabase();
    onTestFinished(drop);
    const database = new URL(url);
    const relay = await startTcpRelay(`${database.hostname}:${database.port || 5432}`);
    onTestFinished(() => relay.close());
    database.host = relay.address;
    const store = postgresStore({ url: database.href });
    onTestFinished(() => store.close());
    await store.init();
    const logger = recordingLogger();
    const bus = new EventBus({ store, broker: memoryBroker(), catalog: new EventCatalog([defineEventType('order.created', z.object({ n: z.number() }))]), pollInterval: 20, logger });
    await bus.start();
    onTestFinished(() => bus.stop());
    const polling = () => logger.entries.filter(({ message }) => message?.startsWith('polling the log failed'));
    await relay.cut();
    // About 50 polls fail meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await relay.resume();
    await waitFor(() => polling().some(({ level }) => level === 'info'), 'the line that says it works again');
    const [first, back, ...more] = polling();
    expect(first).toMatchObject({ level: 'warn', message: 'polling the log failed' });
    expect(back).toMatchObject({ level: 'info', message: expect.stringMatching(/^polling the log failed \d+ times; it works again$/) });
    expect(back?.fields.failures).toBeGreaterThan(5);
    expect(more).toEqual([]);
  });
});
