import { z } from 'zod';

/** A replay as the API shows it. */
export const replaySchema = z.object({
  id: z.string().describe('`rpl_…`'),
  subscriptionId: z.string(),
  status: z
    .enum(['running', 'completed', 'cancelled', 'failed'])
    .describe(
      '`cancelled`: by `DELETE` or because the subscription was deleted; `failed`: see `error`. A replay whose node stops or dies stays `running`, and another node (or the same one, started again) goes on from `position`',
    ),
  after: z.number().int().nonnegative().describe('Events after this seq are replayed...'),
  since: z.iso
    .datetime()
    .optional()
    .describe('When the replay was asked from a time: `after` is the seq of the last event published before it'),
  until: z.number().int().nonnegative().describe('...up to this one: the end of the log when the replay began'),
  position: z.number().int().nonnegative().describe('Every matching event up to this seq has its delivery in the outbox'),
  replayed: z.number().int().nonnegative().describe('Deliveries made (or started again) so far'),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().nullable(),
  error: z.string().optional().describe('Why it was cancelled or failed'),
});

export type ReplayView = z.infer<typeof replaySchema>;
