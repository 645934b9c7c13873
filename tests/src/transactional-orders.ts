/**
 * The example of docs/guides/transactional-publish.md: an express shop that stores an order and
 * publishes `order.created` in one transaction, with Herald on the same database (kysely). Tested by
 * transactional-publish.test.ts; the guide quotes it.
 */
import { defineEventType, type EventMapOf } from '@herald/core';
import { errorHandler, type Herald } from '@herald/server';
import express, { type Express } from 'express';
import { z } from 'zod';

export const shopEventTypes = [
  defineEventType(
    'order.created',
    z.object({ orderId: z.string().min(1), sku: z.string().min(1), quantity: z.number().int().positive(), total: z.number().nonnegative() }),
  ),
] as const;

export type ShopHerald = Herald<EventMapOf<typeof shopEventTypes>>;

/** The shop's own tables, next to Herald's in the same database. */
export type ShopTables = {
  orders: { id: string; sku: string; quantity: number; total: number };
  stock: { sku: string; available: number };
};

/** Creates the shop's tables (an app would run its own migrations). */
export async function createShopTables(herald: ShopHerald): Promise<void> {
  const db = herald.database.withTables<ShopTables>();
  await db.schema
    .createTable('orders')
    .ifNotExists()
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('sku', 'text', (c) => c.notNull())
    .addColumn('quantity', 'integer', (c) => c.notNull())
    .addColumn('total', 'real', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('stock')
    .ifNotExists()
    .addColumn('sku', 'text', (c) => c.primaryKey())
    .addColumn('available', 'integer', (c) => c.notNull())
    .execute();
}

/** An order the shop turns down (409); its transaction rolls back. */
class Refused extends Error {}

/** `POST /orders {orderId, sku, quantity, total}`: stores the order, publishes `order.created` and reserves the stock, all or nothing. */
export function shopApp(herald: ShopHerald): Express {
  const db = herald.database.withTables<ShopTables>();
  const app = express();
  app.use(express.json());
  app.get('/orders', async (_req, res) => {
    res.json(await db.selectFrom('orders').selectAll().orderBy('id').execute());
  });
  app.post('/orders', async (req, res) => {
    const { orderId, sku, quantity, total } = req.body as { orderId: string; sku: string; quantity: number; total: number };
    try {
      const published = await db.transaction().execute(async (trx) => {
        const stored = await trx
          .insertInto('orders')
          .values({ id: orderId, sku, quantity, total })
          .onConflict((oc) => oc.column('id').doNothing())
          .executeTakeFirst();
        if (Number(stored.numInsertedOrUpdatedRows) === 0) throw new Refused('Order already placed');
        // Validated first: invalid data throws here, before anything is written, and the transaction rolls back.
        const result = await herald.publish({ type: 'order.created', data: { orderId, sku, quantity, total } }, { transaction: trx });
        const reserved = await trx
          .updateTable('stock')
          .set((eb) => ({ available: eb('available', '-', quantity) }))
          .where('sku', '=', sku)
          .where('available', '>=', quantity)
          .executeTakeFirst();
        // Thrown after the publish: the order and its event roll back together.
        if (Number(reserved.numUpdatedRows) === 0) throw new Refused('Out of stock');
        return result;
      });
      // Committed: deliver now rather than at the next poll of the log.
      published.afterCommit();
      res.status(201).json({ orderId, eventId: published.event.id, seq: published.event.seq });
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      res.status(409).json({ title: error.message, orderId, sku });
    }
  });
  // Invalid event data (publish's ValidationError): 422 problem+json, with the issues, as Herald's own routes answer.
  app.use(errorHandler());
  return app;
}
