import { defineEventType } from '@herald/core';
import { z } from 'zod';

const money = { amount: z.number().nonnegative(), currency: z.string().length(3) };

/** One valid example per type: the page's publish form starts from it, and the catalog lists it (`GET /v1/event-types`, test events). */
export const exampleData = {
  'order.created': { orderId: 'ord_1001', customer: 'acme', total: 42.5, currency: 'EUR' },
  'order.paid': { orderId: 'ord_1001', amount: 42.5, currency: 'EUR', method: 'card' },
  'order.shipped': { orderId: 'ord_1001', carrier: 'DHL' },
  'invoice.sent': { invoiceId: 'inv_2001', orderId: 'ord_1001', email: 'billing@acme.test' },
  'invoice.paid': { invoiceId: 'inv_2001', amount: 42.5 },
} as const;

/** The demo's catalog: a tiny shop. */
export const orderCreated = defineEventType(
  'order.created',
  z
    .object({
      orderId: z.string(),
      customer: z.string().optional(),
      total: z.number().nonnegative(),
      currency: z.string().length(3),
    })
    .meta({ examples: [exampleData['order.created']] }),
  { description: 'A customer placed an order' },
);

export const orderPaid = defineEventType(
  'order.paid',
  z.object({ orderId: z.string(), ...money, method: z.enum(['card', 'transfer', 'wallet']) }).meta({ examples: [exampleData['order.paid']] }),
  { description: 'An order was paid for' },
);

export const orderShipped = defineEventType('order.shipped', z.object({ orderId: z.string(), carrier: z.string() }).meta({ examples: [exampleData['order.shipped']] }), {
  description: 'An order left the warehouse',
});

export const invoiceSent = defineEventType(
  'invoice.sent',
  z.object({ invoiceId: z.string(), orderId: z.string(), email: z.email() }).meta({ examples: [exampleData['invoice.sent']] }),
  { description: 'An invoice was emailed to the customer' },
);

export const invoicePaid = defineEventType('invoice.paid', z.object({ invoiceId: z.string(), amount: z.number() }).meta({ examples: [exampleData['invoice.paid']] }), {
  description: 'An invoice was paid',
});

export const demoEventTypes = [orderCreated, orderPaid, orderShipped, invoiceSent, invoicePaid] as const;
