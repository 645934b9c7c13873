import { sqliteStore } from './index.js';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { tempDirectory } from '../../../bench/src/lib/temp-directory.js';
const dir = tempDirectory();
const store = sqliteStore({ path: dir.file('h.db') });
await store.init(); await store.close();
const db = new Database(dir.file('h.db'));
db.pragma('journal_mode = WAL'); db.pragma('synchronous = FULL');
const kdb = new Kysely<any>({ dialect: new SqliteDialect({ database: db }) });
const data = JSON.stringify({ payload: 'x'.repeat(1010) });
let n = 0;
const row = () => ({ id: `e${n++}`, type: 'a.b', source: '/h', subject: null, time: new Date().toISOString(), datacontenttype: 'application/json', data, consumer: null });
const ins = db.prepare('insert into herald_events (id, type, source, subject, time, datacontenttype, data, consumer) values (?, ?, ?, ?, ?, ?, ?, ?)');
const variants: Record<string, () => Promise<void> | void> = {
  bare: () => db.transaction(() => { for (let i = 0; i < 64; i++) { const r = row(); ins.run(r.id, r.type, r.source, r.subject, r.time, r.datacontenttype, r.data, r.consumer); } })(),
  multirowReturning: () => db.transaction(() => {
    const rows = Array.from({ length: 64 }, row);
    const sql = `insert into herald_events (id, type, source, subject, time, datacontenttype, data, consumer) values ${rows.map(() => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')} on conflict (id) do nothing returning id, seq`;
    db.prepare(sql).all(rows.flatMap((r) => [r.id, r.type, r.source, r.subject, r.time, r.datacontenttype, r.data, r.consumer]));
  })(),
  kysely: async () => { await kdb.transaction().execute(async (trx) => { await trx.insertInto('herald_events').values(Array.from({ length: 64 }, row)).onConflict((oc) => oc.column('id').doNothing()).returning(['id', 'seq']).execute(); }); },
  kyselyNoTx: async () => { await kdb.insertInto('herald_events').values(Array.from({ length: 64 }, row)).onConflict((oc) => oc.column('id').doNothing()).returning(['id', 'seq']).execute(); },
};
const totals: Record<string, number[]> = {};
for (let round = 0; round < 6; round++) for (const [name, fn] of Object.entries(variants)) {
  let k = 0; const t0 = performance.now();
  while (performance.now() - t0 < 400) { await fn(); k++; }
  (totals[name] ??= []).push(((performance.now() - t0) / k));
}
for (const [name, v] of Object.entries(totals)) console.log(name.padEnd(20), v.map((x) => x.toFixed(2)).join(' '), 'ms/txn');
await kdb.destroy(); dir.remove();
