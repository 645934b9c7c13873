import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { HeraldEvent, NewEvent } from '../envelope.js';
import { matchesPattern } from '../names.js';
// By path rather than by package name: @herald/testkit depends on @herald/core, so a dependency back would be a cycle.
import { runStoreSuite } from '../../../testkit/src/store-suite.js';
import type { ApiKeyRecord } from '../store.js';
import { tempDatabase, tempFolder } from '../temp-folder.test-support.js';
import type { HeraldDatabase } from './schema.js';
import { sqliteFlavor, syncedSqliteFlavor } from './sql-flavor.js';
import { SqlStore } from './sql-store.js';
import { commitLevelsStore } from './sqlite.test-support.js';
import { sqliteStore } from './sqlite-store.js';

/** An initialised store on `:memory:` or a fresh temp file; closed after the test. */
async function open(where: 'memory' | 'file' | string): Promise<SqlStore> {
  const path = where === 'memory' ? ':memory:' : where === 'file' ? join(tempFolder(), 'db', 'herald.db') : where;
  const store = sqliteStore({ path });
  let closed = false;
  const close = store.close.bind(store);
  store.close = async () => {
    closed = true;
    await close();
  };
  onTestFinished(async () => {
    if (!closed) await store.close();
  });
  await store.init();
  return store;
}

let counter = 0;
function event(type: string, data: unknown = {}, extra: Partial<NewEvent> = {}): NewEvent {
  counter += 1;
  return {
    specversion: '1.0',
    id: `evt_test_${counter}`,
    type,
    source: '/test',
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, counter % 60)).toISOString(),
    datacontenttype: 'application/json',
    data,
    ...extra,
  };
}

runStoreSuite('SQLite', {
  async create() {
    const dir = mkdtempSync(join(tmpdir(), 'herald-store-suite-'));
    const path = join(dir, 'herald.db');
    return { open: () => sqliteStore({ path }), dispose: async () => rmSync(dir, { recursive: true, force: true }) };
  },
});

const seqsOf = (events: readonly HeraldEvent[]) => events.map((e) => e.seq);
const idsOf = (events: readonly { id: string }[]) => events.map((e) => e.id);

describe.each(['memory', 'file'] as const)('SqlStore on SQLite (%s)', (where) => {
  describe('append', () => {
    it('assigns strictly increasing seqs and stores every field', async () => {
      const store = await open(where);
      const input = [
        event('order.created', { orderId: 'o1', lines: [{ sku: 'a', n: 2 }], note: 'ünïcødé ✓' }, { subject: 'orders/o1' }),
        event('order.paid', null, { consumer: 'acme' }),
        event('order.shipped', [1, 'two', { three: 3 }]),
      ];
      const first = await store.append(input.slice(0, 2));
      const second = await store.append(input.slice(2));
      const results = [...first, ...second];
      expect(results.map((r) => r.created)).toEqual([true, true, true]);
      const seqs = results.map((r) => r.event.seq);
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1] as number);
      expect(results.map((r) => r.event)).toEqual(input.map((e, i) => ({ ...e, seq: seqs[i] })));

      const read = await store.read({ after: 0, limit: 10 });
      expect(read).toEqual(results.map((r) => r.event));
      expect(read[1]).not.toHaveProperty('subject');
      expect(read[0]).not.toHaveProperty('consumer');
    });

    it('an empty append stores nothing', async () => {
      const store = await open(where);
      expect(await store.append([])).toEqual([]);
      expect(await store.bounds()).toEqual({ oldest: null, latest: 0 });
    });

    it('is idempotent on id: the second append returns the FIRST event, created false, and stores nothing', async () => {
      const store = await open(where);
      const original = event('order.created', { version: 1 });
      const [first] = await store.append([original]);
      await store.append([event('filler')]);
      const retry = { ...original, data: { version: 2 }, type: 'order.updated', time: new Date().toISOString() };
      const [second] = await store.append([retry]);
      expect(first?.created).toBe(true);
      expect(second?.created).toBe(false);
      expect(second?.event).toEqual(first?.event);
      expect(second?.event.data).toEqual({ version: 1 });
      const all = await store.read({ after: 0, limit: 100 });
      expect(all).toHaveLength(2);
      expect(all.filter((e) => e.id === original.id)).toEqual([first?.event]);
      expect((await store.bounds()).latest).toBe(all[1]?.seq);
    });

    it('handles a batch mixing new events, an already-logged id and a repeat inside the batch', async () => {
      const store = await open(where);
      const logged = event('a.logged', { n: 0 });
      const [loggedResult] = await store.append([logged]);
      const x = event('a.x', { n: 1 });
      const y = event('a.y', { n: 2 });
      const results = await store.append([x, { ...logged, data: { n: 99 } }, y, { ...x, data: { n: 100 } }]);
      expect(results.map((r) => r.created)).toEqual([true, false, true, false]);
      expect(idsOf(results.map((r) => r.event))).toEqual([x.id, logged.id, y.id, x.id]);
      expect(results[1]?.event).toEqual(loggedResult?.event);
      expect(results[3]?.event).toEqual(results[0]?.event);
      expect(results[3]?.event.data).toEqual({ n: 1 });
      expect(results[2]?.event.seq).toBeGreaterThan(results[0]?.event.seq as number);
      const all = await store.read({ after: 0, limit: 100 });
      expect(idsOf(all)).toEqual([logged.id, x.id, y.id]);
      expect(all[1]?.data).toEqual({ n: 1 });
    });

    it('concurrent appends of the same id create it once, and both get its seq', async () => {
      const store = await open(where);
      const e = event('race.same', { who: 'first' });
      const [a, b] = await Promise.all([store.append([e]), store.append([{ ...e, data: { who: 'second' } }])]);
      expect([a?.[0]?.created, b?.[0]?.created]).toEqual([true, false]);
      expect(b?.[0]?.event).toEqual(a?.[0]?.event);
      expect(await store.read({ after: 0, limit: 10 })).toHaveLength(1);
    });

    it('stores large batches (more rows than one INSERT takes)', async () => {
      const store = await open(where);
      const batch = Array.from({ length: 1234 }, (_, i) => event('bulk.item', { i }));
      const results = await store.append(batch);
      expect(results.every((r) => r.created)).toBe(true);
      expect(new Set(results.map((r) => r.event.seq)).size).toBe(1234);
      const again = await store.append(batch);
      expect(again.map((r) => r.created)).toEqual(batch.map(() => false));
      expect(again.map((r) => r.event.seq)).toEqual(results.map((r) => r.event.seq));
      expect(await store.bounds()).toEqual({ oldest: results[0]?.event.seq, latest: results.at(-1)?.event.seq });
    });
  });

  describe('read', () => {
    it('reads after a seq, in seq order, with a limit', async () => {
      const store = await open(where);
      const results = await store.append(Array.from({ length: 20 }, (_, i) => event('page.item', { i })));
      const seqs = results.map((r) => r.event.seq);
      expect(seqsOf(await store.read({ after: 0, limit: 5 }))).toEqual(seqs.slice(0, 5));
      expect(seqsOf(await store.read({ after: seqs[4] as number, limit: 5 }))).toEqual(seqs.slice(5, 10));
      expect(seqsOf(await store.read({ after: seqs[17] as number, limit: 5 }))).toEqual(seqs.slice(18));
      expect(await store.read({ after: seqs[19] as number, limit: 5 })).toEqual([]);
      expect(await store.read({ after: 0, limit: 0 })).toEqual([]);
      expect(seqsOf(await store.read({ after: 0, limit: 1000 }))).toEqual(seqs);
    });

    it('reads a page larger than a function takes arguments (200,000 events)', async () => {
      const store = await open(where);
      for (let n = 0; n < 200_000; n += 5_000) await store.append(Array.from({ length: 5_000 }, (_, i) => event('page.item', { i: n + i })));
      const page = await store.read({ after: 0, limit: 250_000 });
      expect(page).toHaveLength(200_000);
      expect(page.at(-1)?.data).toEqual({ i: 199_999 });
    }, 60_000);

    describe('by type', () => {
      // Includes names the catalog would refuse (`%`, upper case): the store must still filter them exactly,
      // and LIKE's `_` and `%` must not act as wildcards, nor its case-insensitivity leak through.
      const types = [
        'order',
        'order.created',
        'order.updated',
        'order.item.added',
        'ORDER.created',
        'orderx.created',
        'invoice.created',
        'invoice.paid',
        'user_profile.created',
        'userXprofile.created',
        'user_profile.deep.created',
        'a%b.c',
        'aXYb.c',
        'aXb.c',
        'ab.c',
        'a_b.c',
        'a\\b.c',
      ];

      async function seeded() {
        const store = await open(where);
        // Twice over, interleaved, so pages and ordering matter.
        const results = await store.append([...types, ...types].map((type, i) => event(type, { i })));
        return { store, all: results.map((r) => r.event) };
      }

      const cases: [string[], string[]][] = [
        [['order.created'], ['order.created']],
        [['order.created', 'invoice.paid'], ['order.created', 'invoice.paid']],
        [['order.*'], ['order.created', 'order.updated']],
        [['*.created'], ['order.created', 'ORDER.created', 'orderx.created', 'invoice.created', 'user_profile.created', 'userXprofile.created']],
        [['order.**'], ['order.created', 'order.updated', 'order.item.added']],
        [['**'], types],
        [['*'], ['order']],
        [['*.*.*'], ['order.item.added', 'user_profile.deep.created']],
        [['order.*', 'invoice.paid'], ['order.created', 'order.updated', 'invoice.paid']],
        [['order.*', '*.paid'], ['order.created', 'order.updated', 'invoice.paid']],
        [['user_profile.*'], ['user_profile.created']],
        [['user_profile.**'], ['user_profile.created', 'user_profile.deep.created']],
        [['a%b.*'], ['a%b.c']],
        [['a_b.*'], ['a_b.c']],
        [['a\\b.*'], ['a\\b.c']],
        [['ab.*', 'a_b.c'], ['ab.c', 'a_b.c']],
        [['order.created', 'order.created'], ['order.created']],
        [['nothing.*', 'no.such'], []],
      ];

      it.each(cases)('%j reads exactly %j', async (patterns, expectedTypes) => {
        const { store, all } = await seeded();
        const expected = all.filter((e) => expectedTypes.includes(e.type));
        // The fixture agrees with matchesPattern, the definition of a match.
        expect(expected).toEqual(all.filter((e) => patterns.some((p) => matchesPattern(p, e.type))));
        expect(await store.read({ after: 0, limit: 1000, types: patterns })).toEqual(expected);
        // And page by page, three at a time.
        const paged: HeraldEvent[] = [];
        for (let after = 0; ; ) {
          const page = await store.read({ after, limit: 3, types: patterns });
          expect(page.length).toBeLessThanOrEqual(3);
          paged.push(...page);
          if (page.length < 3) break;
          after = page.at(-1)?.seq as number;
        }
        expect(paged).toEqual(expected);
      });

      it('an empty type list means every type', async () => {
        const { store, all } = await seeded();
        expect(await store.read({ after: 0, limit: 1000, types: [] })).toEqual(all);
      });
    });

    it('pages through a sparse pattern (1,200 events, every 7th matches)', async () => {
      const store = await open(where);
      // `*.hit` cannot be narrowed in SQL; `a.*` can, but `a.hit.deep` shares its prefix and is filtered in code.
      const batch = Array.from({ length: 1200 }, (_, i) =>
        i % 7 === 3 ? event('a.hit', { i }) : event(i % 2 ? 'a.hit.deep' : 'b.miss', { i }),
      );
      const all = (await store.append(batch)).map((r) => r.event);
      const expected = all.filter((e) => e.type === 'a.hit');
      expect(expected).toHaveLength(171);
      for (const patterns of [['*.hit'], ['a.*'], ['a.*', 'zzz.*'], ['*.hit', 'nope']]) {
        const first = await store.read({ after: 0, limit: 50, types: patterns });
        expect(seqsOf(first)).toEqual(seqsOf(expected.slice(0, 50)));
        const paged: HeraldEvent[] = [];
        let pages = 0;
        for (let after = 0; ; pages++) {
          const page = await store.read({ after, limit: 50, types: patterns });
          paged.push(...page);
          if (page.length < 50) break;
          after = page.at(-1)?.seq as number;
        }
        expect(pages).toBe(3);
        expect(seqsOf(paged)).toEqual(seqsOf(expected));
        expect(paged.every((e) => e.type === 'a.hit')).toBe(true);
        // Starting in the middle of a gap.
        const middle = expected[60]?.seq as number;
        expect(seqsOf(await store.read({ after: middle - 2, limit: 50, types: patterns }))).toEqual(seqsOf(expected.slice(60, 110)));
      }
    });

    it('visibleTo hides events addressed to other consumers', async () => {
      const store = await open(where);
      const all = (
        await store.append([
          event('n.broadcast'),
          event('n.direct', {}, { consumer: 'acme' }),
          event('n.direct', {}, { consumer: 'globex' }),
          event('n.broadcast'),
          event('m.direct', {}, { consumer: 'acme' }),
          event('n.direct', {}, { consumer: 'acme_' }),
        ])
      ).map((r) => r.event);
      const visible = (consumer: string) => all.filter((e) => e.consumer === undefined || e.consumer === consumer);
      expect(await store.read({ after: 0, limit: 100 })).toEqual(all);
      expect(await store.read({ after: 0, limit: 100, visibleTo: 'acme' })).toEqual(visible('acme'));
      expect(await store.read({ after: 0, limit: 100, visibleTo: 'globex' })).toEqual(visible('globex'));
      expect(await store.read({ after: 0, limit: 100, visibleTo: 'nobody' })).toEqual(visible('nobody'));
      expect(await store.read({ after: 0, limit: 100, visibleTo: 'acme', types: ['n.*'] })).toEqual(
        visible('acme').filter((e) => e.type.startsWith('n.')),
      );
      expect(await store.read({ after: 0, limit: 2, visibleTo: 'globex', types: ['*.direct'] })).toEqual([all[2]]);
      expect(await store.read({ after: all[0]?.seq as number, limit: 2, visibleTo: 'acme' })).toEqual([all[1], all[3]]);
    });
  });

  it('bounds on an empty and a non-empty log', async () => {
    const store = await open(where);
    expect(await store.bounds()).toEqual({ oldest: null, latest: 0 });
    const [a] = await store.append([event('b.one')]);
    expect(await store.bounds()).toEqual({ oldest: a?.event.seq, latest: a?.event.seq });
    const results = await store.append([event('b.two'), event('b.three')]);
    expect(await store.bounds()).toEqual({ oldest: a?.event.seq, latest: results[1]?.event.seq });
  });

  it('ping answers', async () => {
    const store = await open(where);
    await expect(store.ping()).resolves.toBeUndefined();
  });

  describe('subscriptions', () => {
    const base = {
      consumer: 'acme',
      transport: 'webhook',
      types: ['order.*', 'invoice.paid'],
      status: 'active' as const,
      config: { url: 'https://example.com/hook', secret: 'whsec_x', nested: { a: [1, 2] } },
      cursor: 0,
    };

    it('create, get, list with filters, delete', async () => {
      const store = await open(where);
      const before = new Date().toISOString();
      const a = await store.subscriptions.create({ ...base, id: 'sub_a' });
      const b = await store.subscriptions.create({ ...base, id: 'sub_b', consumer: 'globex', transport: 'websocket' });
      const c = await store.subscriptions.create({ ...base, id: 'sub_c', transport: 'sse', disabledReason: 'x', status: 'disabled' });
      expect(a).toEqual({ ...base, id: 'sub_a', createdAt: expect.any(String), updatedAt: a.createdAt });
      expect(a.createdAt >= before).toBe(true);
      expect(await store.subscriptions.get('sub_a')).toEqual(a);
      expect(await store.subscriptions.get('sub_c')).toEqual(c);
      expect(await store.subscriptions.get('sub_missing')).toBeUndefined();
      expect(idsOf(await store.subscriptions.list())).toEqual(['sub_a', 'sub_b', 'sub_c']);
      expect(idsOf(await store.subscriptions.list({ consumer: 'acme' }))).toEqual(['sub_a', 'sub_c']);
      expect(idsOf(await store.subscriptions.list({ transport: 'websocket' }))).toEqual(['sub_b']);
      expect(idsOf(await store.subscriptions.list({ consumer: 'acme', transport: 'sse' }))).toEqual(['sub_c']);
      expect(await store.subscriptions.list({ consumer: 'nobody' })).toEqual([]);
      await expect(store.subscriptions.create({ ...base, id: 'sub_a' })).rejects.toThrow();
      expect(await store.subscriptions.delete('sub_b')).toBe(true);
      expect(await store.subscriptions.delete('sub_b')).toBe(false);
      expect(await store.subscriptions.get('sub_b')).toBeUndefined();
      expect(idsOf(await store.subscriptions.list())).toEqual(['sub_a', 'sub_c']);
      expect(b.consumer).toBe('globex');
    });

    it('update changes only the given fields and bumps updatedAt', async () => {
      const store = await open(where);
      const created = await store.subscriptions.create({ ...base, id: 'sub_u' });
      await new Promise((resolve) => setTimeout(resolve, 5));
      const updated = await store.subscriptions.update('sub_u', { types: ['user.**'] });
      expect(updated).toEqual({ ...created, types: ['user.**'], updatedAt: expect.any(String) });
      expect(updated?.updatedAt && updated.updatedAt > created.updatedAt).toBe(true);
      expect(await store.subscriptions.get('sub_u')).toEqual(updated);

      const moved = await store.subscriptions.update('sub_u', { cursor: 42, config: { url: 'https://example.org' } });
      expect(moved).toEqual({ ...created, types: ['user.**'], cursor: 42, config: { url: 'https://example.org' }, updatedAt: expect.any(String) });
      expect(await store.subscriptions.get('sub_u')).toEqual(moved);
      expect(await store.subscriptions.update('sub_nope', { cursor: 1 })).toBeUndefined();
      expect(await store.subscriptions.get('sub_nope')).toBeUndefined();
    });

    it('an update whose fields are present but undefined keeps those fields', async () => {
      const store = await open(where);
      const created = await store.subscriptions.create({ ...base, id: 'sub_partial' });
      const updated = await store.subscriptions.update('sub_partial', { types: undefined, config: undefined, cursor: undefined, status: 'paused' });
      expect(updated).toEqual({ ...created, status: 'paused', updatedAt: expect.any(String) });
      expect(await store.subscriptions.get('sub_partial')).toEqual(updated);
    });

    it('disabling keeps a reason; moving away from disabled clears it', async () => {
      const store = await open(where);
      await store.subscriptions.create({ ...base, id: 'sub_d' });
      const disabled = await store.subscriptions.update('sub_d', { status: 'disabled', disabledReason: 'endpoint answered 410' });
      expect(disabled).toMatchObject({ status: 'disabled', disabledReason: 'endpoint answered 410' });
      expect(await store.subscriptions.get('sub_d')).toMatchObject({ status: 'disabled', disabledReason: 'endpoint answered 410' });
      // Changing something else keeps the reason.
      expect(await store.subscriptions.update('sub_d', { cursor: 7 })).toMatchObject({ status: 'disabled', disabledReason: 'endpoint answered 410' });
      const active = await store.subscriptions.update('sub_d', { status: 'active' });
      expect(active?.status).toBe('active');
      expect(active).not.toHaveProperty('disabledReason');
      expect(await store.subscriptions.get('sub_d')).not.toHaveProperty('disabledReason');
      expect(await store.subscriptions.get('sub_d')).toMatchObject({ cursor: 7, types: base.types, config: base.config });
    });
  });

  describe('keys', () => {
    const key = (id: string, extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
      id,
      role: 'consumer',
      consumer: 'acme',
      hash: `hash-of-${id}`,
      createdAt: `2025-01-01T00:00:0${id.length % 10}.000Z`,
      ...extra,
    });

    it('put, get, list, replace and revoke', async () => {
      const store = await open(where);
      const admin: ApiKeyRecord = { id: 'key_admin', role: 'admin', hash: 'h-admin', createdAt: '2025-01-01T00:00:00.000Z' };
      const consumer = key('key_c', { createdAt: '2025-01-02T00:00:00.000Z' });
      await store.keys.put(consumer);
      await store.keys.put(admin);
      expect(await store.keys.get('key_admin')).toEqual(admin);
      expect(await store.keys.get('key_admin')).not.toHaveProperty('consumer');
      expect(await store.keys.get('key_c')).toEqual(consumer);
      expect(await store.keys.get('key_none')).toBeUndefined();
      expect(await store.keys.list()).toEqual([admin, consumer]);

      const replaced = { ...consumer, hash: 'new-hash', consumer: 'globex' };
      await store.keys.put(replaced);
      expect(await store.keys.get('key_c')).toEqual(replaced);
      expect(await store.keys.list()).toHaveLength(2);

      expect(await store.keys.revoke('key_c')).toBe(true);
      const revoked = await store.keys.get('key_c');
      expect(revoked?.revokedAt).toEqual(expect.any(String));
      expect(Number.isNaN(Date.parse(revoked?.revokedAt as string))).toBe(false);
      expect(await store.keys.revoke('key_c')).toBe(false);
      expect((await store.keys.get('key_c'))?.revokedAt).toBe(revoked?.revokedAt);
      expect(await store.keys.revoke('key_none')).toBe(false);
      expect(await store.keys.get('key_admin')).not.toHaveProperty('revokedAt');
    });
  });

  describe('eventTypes', () => {
    it('insert is idempotent on name and keeps the first', async () => {
      const store = await open(where);
      const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
      const first = { name: 'z.last', description: 'first', schema, createdAt: '2025-01-01T00:00:00.000Z' };
      expect(await store.eventTypes.insert(first)).toBe(true);
      expect(await store.eventTypes.insert({ ...first, description: 'second', schema: {} })).toBe(false);
      expect(await store.eventTypes.insert({ name: 'a.first', createdAt: '2025-01-02T00:00:00.000Z' })).toBe(true);
      expect(await store.eventTypes.list()).toEqual([{ name: 'a.first', createdAt: '2025-01-02T00:00:00.000Z' }, first]);
    });
  });
});

describe('SqlStore on a SQLite file', () => {
  it('keeps everything across close and reopen, and continues the seq', async () => {
    const path = join(tempFolder(), 'nested', 'dir', 'herald.db');
    const store = await open(path);
    const appended = (await store.append([event('keep.one', { a: 1 }), event('keep.two', { b: [2] }, { consumer: 'acme', subject: 's' })])).map(
      (r) => r.event,
    );
    const subscription = await store.subscriptions.create({
      id: 'sub_keep',
      consumer: 'acme',
      transport: 'webhook',
      types: ['keep.*'],
      status: 'paused',
      config: { url: 'https://example.com' },
      cursor: 5,
    });
    const key: ApiKeyRecord = { id: 'key_keep', role: 'admin', hash: 'h', createdAt: '2025-01-01T00:00:00.000Z' };
    await store.keys.put(key);
    await store.eventTypes.insert({ name: 'keep.one', schema: { type: 'object' }, createdAt: '2025-01-01T00:00:00.000Z' });
    await store.close();

    const reopened = await open(path);
    expect(await reopened.read({ after: 0, limit: 10 })).toEqual(appended);
    expect(await reopened.bounds()).toEqual({ oldest: appended[0]?.seq, latest: appended[1]?.seq });
    expect(await reopened.subscriptions.get('sub_keep')).toEqual(subscription);
    expect(await reopened.keys.list()).toEqual([key]);
    expect(await reopened.eventTypes.list()).toEqual([{ name: 'keep.one', schema: { type: 'object' }, createdAt: '2025-01-01T00:00:00.000Z' }]);
    // Idempotency survives a restart, and new events continue after the old ones.
    const [again] = await reopened.append([{ ...event('keep.one'), id: appended[0]?.id as string }]);
    expect(again).toEqual({ event: appended[0], created: false });
    const [next] = await reopened.append([event('keep.three')]);
    expect(next?.event.seq).toBeGreaterThan(appended[1]?.seq as number);
    await reopened.close();

    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
  });

  it('keeps its statement journals in memory, on a database it is given too', async () => {
    const database = new Database(tempDatabase());
    const store = sqliteStore({ database });
    await store.init();
    await store.append([event('journal.one')]);
    // 2: MEMORY. With the default (a temporary file), each UPDATE … RETURNING in a transaction wrote its pages to a file.
    expect(database.pragma('temp_store', { simple: true })).toBe(2);
    await store.close();
  });

  it('says which file it cannot open and why, once, and leaves a file that is not a database as it was', async () => {
    const folder = tempFolder();
    const notADatabase = join(folder, 'notes.txt');
    writeFileSync(notADatabase, 'not a database, and kept as it is');
    for (const [path, reason] of [
      [folder, 'unable to open database file (SQLITE_CANTOPEN)'],
      [notADatabase, 'file is not a database (SQLITE_NOTADB)'],
      // Its folder cannot be made: a file is in the way.
      [join(notADatabase, 'herald.db'), `EEXIST: file already exists, mkdir '${notADatabase}'`],
    ] as const) {
      const store = sqliteStore({ path });
      const failure = await store.init().catch((error: unknown) => error);
      // Said as it is rather than as a 503 "unavailable for now" (no `code`), and without the reason again as a `cause`.
      expect(failure).toEqual(new Error(`sqliteStore cannot open the database at ${path}: ${reason}`));
      expect(failure).not.toHaveProperty('code');
      expect(failure).not.toHaveProperty('cause');
      await store.close();
    }
    expect(readFileSync(notADatabase, 'utf8')).toBe('not a database, and kept as it is');
  });

  it('close waits for appends that are still pending', async () => {
    const path = tempDatabase();
    const store = await open(path);
    const pending = Array.from({ length: 20 }, (_, i) => store.append([event('close.pending', { i })]));
    await store.close();
    const results = await Promise.all(pending);
    const reopened = await open(path);
    expect(seqsOf(await reopened.read({ after: 0, limit: 100 }))).toEqual(results.map(([r]) => r?.event.seq));
  });
});

describe('SqlStore group commit', () => {
  /** A store whose kysely instance counts the transactions it begins and the inserts into the log. */
  async function counted() {
    const queries: string[] = [];
    const db = new Kysely<HeraldDatabase>({
      dialect: new SqliteDialect({ database: new Database(':memory:') }),
      log: (entry) => {
        if (entry.level === 'query') queries.push(entry.query.sql.trim().toLowerCase());
      },
    });
    const store = new SqlStore(db, sqliteFlavor);
    await store.init();
    onTestFinished(() => store.close());
    queries.length = 0;
    return {
      store,
      begins: () => queries.filter((q) => q === 'begin').length,
      inserts: () => queries.filter((q) => q.startsWith('insert into "herald_events"')).length,
    };
  }

  it('200 concurrent appends resolve with distinct seqs, each with its own results, in fewer transactions', async () => {
    const { store, begins, inserts } = await counted();
    const inputs = Array.from({ length: 200 }, (_, i) =>
      i % 3 === 0 ? [event('group.one', { i })] : [event('group.two', { i, part: 0 }), event('group.two', { i, part: 1 })],
    );
    const results = await Promise.all(inputs.map((events) => store.append(events)));

    results.forEach((result, i) => {
      expect(result.map((r) => r.created)).toEqual(inputs[i]?.map(() => true));
      expect(result.map((r) => ({ id: r.event.id, data: r.event.data }))).toEqual(inputs[i]?.map((e) => ({ id: e.id, data: e.data })));
    });
    const seqs = results.flat().map((r) => r.event.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    // Within one call the seqs follow the input order.
    for (const result of results) if (result.length === 2) expect(result[1]?.event.seq).toBeGreaterThan(result[0]?.event.seq as number);
    const stored = await store.read({ after: 0, limit: 1000 });
    expect(stored).toEqual(results.flat().map((r) => r.event).sort((a, b) => a.seq - b.seq));

    expect(begins()).toBeGreaterThan(0);
    expect(begins()).toBeLessThan(inputs.length / 10);
    expect(inserts()).toBeLessThan(inputs.length / 10);
  });

  it('appends made one after another each get their own transaction', async () => {
    const { store, begins } = await counted();
    for (let i = 0; i < 5; i++) await store.append([event('serial.one', { i })]);
    expect(begins()).toBe(5);
  });

  it('an append that cannot be stored fails alone, not the appends grouped with it', async () => {
    const { store } = await counted();
    const good = Array.from({ length: 10 }, (_, i) => store.append([event('group.good', { i })]));
    const bad = store.append([event('group.bad', { big: 10n })]);
    const moreGood = Array.from({ length: 10 }, (_, i) => store.append([event('group.good', { i: i + 10 })]));
    await expect(bad).rejects.toThrow(/BigInt/);
    const results = await Promise.all([...good, ...moreGood]);
    expect(results.every(([r]) => r?.created)).toBe(true);
    expect(idsOf(await store.read({ after: 0, limit: 100 }))).toEqual(results.map(([r]) => r?.event.id));
  });
});

describe('SqlStore on SQLite with synchronous=FULL', () => {
  async function watched() {
    const watching = await commitLevelsStore(tempDatabase());
    onTestFinished(() => watching.store.close());
    return watching;
  }

  it('syncs appends, commits an unsynced transaction (the outbox writes in them) under NORMAL, and is back to FULL after each, a failed one too', async () => {
    const { store, db, levels, level } = await watched();
    const unsynced = syncedSqliteFlavor.unsyncedTransaction;
    if (!unsynced) throw new Error('syncedSqliteFlavor has unsynced transactions');
    await store.append([event('sync.one')]);
    levels.length = 0;
    await unsynced(db, (trx) => trx.insertInto('herald_write_probe').values({ pad: 'unsynced' }).execute());
    await store.append([event('sync.two')]);
    expect(levels).toEqual([1, 2]);
    expect(level()).toBe(2);

    await expect(unsynced(db, (trx) => trx.insertInto('herald_write_probe').values({ pad: {} as string }).execute())).rejects.toThrow(/bind/);
    expect(level()).toBe(2);
    await store.append([event('sync.three')]);
    expect(levels).toEqual([1, 2, 2]);
  });
});
