import { runTransportSuite, transportSuiteCases } from '../../testkit/src/index.js';
import { describe, expect, it } from 'vitest';
import { atMostOnceJsonlTransport, jsonlHarness, jsonlTransport, quickDelivery } from './jsonl-transport.test-support.js';

// A push transport that is not HTTP passes the whole suite, the push cases included: definePushTransport makes it durable.
runTransportSuite('jsonl (definePushTransport)', jsonlHarness(() => jsonlTransport(quickDelivery), new URL('./jsonl-node.test-support.ts', import.meta.url)));

describe('the push cases', () => {
  // What the suite could not tell before it had these cases: a push transport that sends straight from the bus.
  const harness = jsonlHarness(() => atMostOnceJsonlTransport(), new URL('./jsonl-at-most-once-node.test-support.ts', import.meta.url), 8_000);
  const pushCase = (name: string) => {
    const found = transportSuiteCases(harness).find((check) => check.name.startsWith(name));
    if (!found) throw new Error(`no case ${name}`);
    return found;
  };

  it('fail a transport that loses what a killed process had not sent', async () => {
    await expect(pushCase('loses nothing when killed').run()).rejects.toThrow(/every event published before the kill to arrive after the restart/);
  }, 60_000);

  it('fail a transport that neither retries nor keeps attempts', async () => {
    await expect(pushCase('retries a delivery its destination refused').run()).rejects.toThrow(/deliveries answered 404/);
  }, 60_000);
});
