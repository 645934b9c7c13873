import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDatabase } from '../../core/src/temp-folder.test-support.js';
import { startTestApp, waitFor } from '../../testkit/src/index.js';
import { scripted, subscribe } from './scripted-transport.test-support.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('a subscription deleted while its deliveries are under way', () => {
  it('is sent nothing more than its attempts in flight; its endpoint is forgotten, its deliveries purged', async () => {
    let started = 0;
    let collected = false;
    const finalized = new FinalizationRegistry<string>(() => {
      collected = true;
    });
    // One at a time and slowly: what the fan-out gave the endpoint waits in its queue.
    const { transport, timesSent } = scripted(
      async () => {
        started += 1;
        await sleep(300);
        return { delivered: true, responseStatus: 200 };
      },
      { concurrency: 1 },
      (target, destination) => destination === 'slow' && finalized.register(target, destination),
    );
    const database = tempDatabase();
    const app = await startTestApp([transport], { database });
    onTestFinished(() => app.close());
    const id = await subscribe(app, 'slow');
    const published = [];
    for (let n = 0; n < 5; n++) published.push((await app.herald.publish({ type: 'order.created', data: { n } })).event);
    await waitFor(() => started === 1, 'the first attempt');
    expect((await app.api('DELETE', `/v1/subscriptions/${id}`)).status).toBe(204);

    await sleep(1_000);
    expect(published.map((event) => timesSent('slow', event.id))).toEqual([1, 0, 0, 0, 0]);
    // The attempt in flight made its delivery's row as it settled: purged after it, none is left.
    const reader = new Database(database, { readonly: true });
    onTestFinished(() => {
      reader.close();
    });
    await waitFor(() => (reader.prepare('select count(*) as n from herald_deliveries where subscription_id = ?').get(id) as { n: number }).n === 0, 'no delivery row left');
    // Nothing of the endpoint is kept: the target worked out for its config is collected.
    await waitFor(async () => {
      gc();
      await sleep(20);
      return collected;
    }, "the deleted subscription's target collected");
  });
});
