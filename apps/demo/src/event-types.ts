import { defineEventType } from '@herald/core';
import { z } from 'zod';

/** The demo's catalog: a tiny shop. */
export const orderCreated = defineEventType(
  'order.created',
  z.object({ orderId: z.string(), total: z.number().nonnegative(), currency: z.string().length(3) }),
  { description: 'A customer placed an order' },
);

export const orderShipped = defineEventType('order.shipped', z.object({ orderId: z.string(), carrier: z.string() }), {
  description: 'An order left the warehouse',
});

export const invoicePaid = defineEventType('invoice.paid', z.object({ invoiceId: z.string(), amount: z.number() }), {
  description: 'An invoice was paid',
});

export const demoEventTypes = [orderCreated, orderShipped, invoicePaid] as const;
