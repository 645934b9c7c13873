import { createHerald } from '@herald/server';
import { demoEventTypes } from './event-types.js';

const herald = createHerald({ eventTypes: demoEventTypes });
const { url } = await herald.listen();
const adminKey = await herald.generatedAdminKey;

console.log(`\nHerald demo listening on ${url}`);
if (adminKey) console.log(`Admin key (shown once, keep it): ${adminKey}`);
else console.log('Admin key: the one set by HERALD_ADMIN_KEY, or printed on the first start');
console.log(`Try: curl -H "Authorization: Bearer <admin key>" ${url}/v1/event-types\n`);
