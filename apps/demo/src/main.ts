import { startDemo } from './demo-server.js';

const demo = await startDemo();

console.log(`\nHerald demo listening on ${demo.url}`);
console.log(`Open ${demo.url} in a browser; the API documents are at ${demo.url}/docs`);
if (demo.adminKey) console.log('Admin key: generated on this start, in the warning logged above (shown only this once)');
else console.log('Admin key: the one set by HERALD_ADMIN_KEY, or the one logged on the first start');
console.log(`Try: curl -H "Authorization: Bearer <admin key>" ${demo.url}/v1/event-types\n`);
