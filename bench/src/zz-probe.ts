import { sqliteStore, EventBus, EventCatalog, memoryBroker, defineEventType } from '@herald/core';
import { tempDirectory } from './lib/temp-directory.js';
import { z } from 'zod';
const dir = tempDirectory();
const store = sqliteStore({ path: dir.file('h.db') });
await store.init();
const data = { payload: 'x'.repeat(1010) };
let n = 0; let t0 = performance.now();
while (performance.now() - t0 < 1000) {
  await store.append([{ specversion: '1.0', id: `e${n++}`, type: 'a.b', source: '/h', time: new Date().toISOString(), datacontenttype: 'application/json', data }]);
}
console.log('append 1', n);
const bus = new EventBus({ store, broker: memoryBroker(), catalog: new EventCatalog([defineEventType('a.b', z.object({ payload: z.string() }))]) });
await bus.start();
n = 0; t0 = performance.now();
while (performance.now() - t0 < 1000) { await bus.publish({ type: 'a.b', data }); n++; }
console.log('publish 1', n);
await bus.stop();
await store.close();
dir.remove();
