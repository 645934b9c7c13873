import type { HeraldEvent } from '@herald/core';
import type { HeraldOptions } from '@herald/server';
import { startTestApp, type TestApp } from './test-app.js';
import type { ClientConnection, Receiver, TransportHarness } from './transport-harness.js';

/** Starts a receiver on a durable subscription; closed with the server. */
export type Receive = (consumer: string, types: string[]) => Promise<Receiver>;

/** What a case gets: a fresh server, and ways to receive from it that are cleaned up after the case. */
export interface SuiteApp {
  app: TestApp;
  receive: Receive;
  /** Keeps a client connection to close after the case. */
  track(connection: ClientConnection): ClientConnection;
}

/** Runs `check` against a fresh server; closes its receivers, connections and the server afterwards. */
export async function withApp(harness: TransportHarness, check: (suite: SuiteApp) => Promise<void>, options: Partial<HeraldOptions> = {}): Promise<void> {
  const app = await startTestApp([harness.transport()], { ...harness.options, ...options });
  const open: { close(): Promise<void> }[] = [];
  const receive: Receive = async (consumer, types) => {
    const receiver = await harness.receive(app, { consumer, types });
    open.push(receiver);
    return receiver;
  };
  const track = (connection: ClientConnection) => {
    open.push(connection);
    return connection;
  };
  try {
    await check({ app, receive, track });
  } finally {
    await app.close();
    await Promise.all(open.map((item) => item.close()));
  }
}

export async function publish(app: TestApp, type: string, n: number, consumer?: string): Promise<HeraldEvent> {
  const { event } = await app.herald.publish({ type, data: { n }, ...(consumer !== undefined ? { consumer } : {}) } as never);
  return event;
}

export const idsOf = (events: readonly HeraldEvent[]) => events.map((event) => event.id);
