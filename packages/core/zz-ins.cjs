const D = require('better-sqlite3'); const fs = require('fs');
for (const f of ['/tmp/ab/i.db', '/tmp/ab/i.db-wal', '/tmp/ab/i.db-shm']) try { fs.rmSync(f); } catch {}
fs.copyFileSync('/tmp/ab/template.db', '/tmp/ab/i.db');
const db = new D('/tmp/ab/i.db'); db.pragma('journal_mode = WAL'); db.pragma('synchronous = NORMAL');
const cols = ['id','subscription_id','event_seq','event_id','status','attempts','next_attempt_at','locked_by','locked_until','created_at','updated_at','attempt_started_at','attempt_duration_ms','attempt_response_status','attempt_response_body'];
const mode = 'plain'; const v = process.argv[2];
if (v === 'nosettled') db.exec('drop index herald_deliveries_settled');
if (v === 'nounique') { db.exec('alter table herald_deliveries rename to old'); db.exec(db.prepare("select sql from sqlite_master where name='old'").get().sql.replace('"old"','herald_deliveries2').replace(/, constraint .*\)\)$/, ')')); db.exec('drop table old'); db.exec('alter table herald_deliveries2 rename to herald_deliveries'); }
if (v === 'worowid' || v === 'worowid-nosettled') { const idx = db.prepare("select sql from sqlite_master where tbl_name='herald_deliveries' and type='index' and sql is not null").all().map(r => r.sql); db.exec('alter table herald_deliveries rename to old'); db.exec(db.prepare("select sql from sqlite_master where name='old'").get().sql.replace('"old"','herald_deliveries') + ' without rowid'); db.exec('drop table old'); for (const i of idx) if (!(v === 'worowid-nosettled' && i.includes('settled'))) db.exec(i); }
if (v === 'cache') db.pragma('cache_size = -64000');
if (v === 'ckpt') db.pragma('wal_autocheckpoint = 10000');
const one = '(' + cols.map(() => '?').join(', ') + ')';
const sql = `insert into "herald_deliveries" (${cols.map(c => `"${c}"`).join(', ')}) values ${Array(25).fill(one).join(', ')} ` + (v === 'nounique' ? '' : 'on conflict ("subscription_id", "event_seq") do nothing') + `` + (mode === 'returning' ? ' returning "id"' : '');
const st = db.prepare(sql);
let seq = 0; const t0 = process.hrtime.bigint(); const now = Date.now();
for (let c = 0; c < 20000 / 100; c++) {
  db.exec('begin');
  for (let b = 0; b < 4; b++) {
    const params = [];
    for (let r = 0; r < 25; r++) { seq++; params.push(`dlv_01m8e9${String(now + seq).padStart(10, '0')}abcdefghijklmnop`, 'sub_01m8e9m82qea9z5xcttd7x24hm', seq, 'evt_01m8e9m82qea9z5xcttd7x24hm', 'delivered', 1, null, null, null, now, now, now, 3, 200, null); }
    if (mode === 'returning') st.all(params); else st.run(params);
  }
  db.exec('commit');
}
console.log(v, 'µs/row', (Number(process.hrtime.bigint() - t0) / 1e3 / 20000).toFixed(2));
