import { eventEnvelopeSchema, eventFilterQuery, queryNumber, queryTypes, requireTypesOrSubscription } from '@herald/core';
import { z } from 'zod';

const seqMessage = `a seq: an integer from 0 to ${Number.MAX_SAFE_INTEGER}`;
const seq = z.string().regex(/^\d{1,16}$/, seqMessage).transform(Number).refine(Number.isSafeInteger, seqMessage);

/** Seconds; any length of wait is cut to the server's cap, so its bound only keeps the parameter short. */
const seconds = z
  .string()
  .regex(/^\d{1,16}(\.\d{1,3})?$/, 'seconds: a non-negative number with at most 16 digits before the point and 3 after it')
  .transform(Number);

/**
 * The query of `GET /v1/poll`: either `types` (comma-separated, or repeated) for an ad hoc poll, or
 * `subscription` for a durable one; `after`, `wait` and `limit` for both. `access_token` is read by the
 * server's auth. Other parameters pass (a cache buster: `_=1700000000000`), but `types[]` and
 * `lastEventId`, which would leave the poll asking for something else than what was meant.
 */
export const pollQuery = z
  .looseObject({
    types: queryTypes.optional(),
    subscription: z.string().min(1).max(128).optional().describe('A durable `poll` subscription, instead of `types`'),
    after: seq
      .optional()
      .describe("Answer the events after this seq: the previous answer's `next`. On a durable subscription it also moves the cursor there. Default: the cursor; for `types`, the end of the log"),
    wait: seconds.optional().describe('Seconds to wait for the first event when none follows `after` yet. Default 25; the server cuts a longer wait to its cap (60 unless configured)'),
    limit: queryNumber(z.number().int().min(1).max(1000).default(100)).describe('At most this many events'),
    filter: eventFilterQuery.optional(),
  })
  .superRefine((query, issues) => {
    requireTypesOrSubscription(query, issues);
    // SSE's name: a poll that ignored it would start at the end of the log and miss the events in between.
    if (query.lastEventId !== undefined) {
      issues.addIssue({ code: 'custom', path: ['lastEventId'], message: "is not a parameter of a poll: resume with after=<seq> (the previous answer's next)" });
    }
  });

export type PollQuery = z.output<typeof pollQuery>;

/** What `GET /v1/poll` answers. */
export const pollAnswerSchema = z.object({
  data: z.array(eventEnvelopeSchema).describe('The events after `after`, in `seq` order, at most `limit`; empty when none came within `wait`'),
  next: z.number().int().nonnegative().describe('Pass as `after` to poll on (on a durable subscription, that acknowledges `data`)'),
  reset: z
    .object({
      reason: z.enum(['ahead', 'expired']),
      latest: z.number().int().nonnegative().describe('Where the answer went on from. `ahead`: the end of the log. `expired`: `after` all the same'),
      oldest: z
        .number()
        .int()
        .positive()
        .optional()
        .describe('`expired` only: the oldest `seq` the log holds in full; the events between `latest` and it were pruned'),
    })
    .optional()
    .describe(
      '`after` could not be served as asked. `ahead`: it is past the end of the log (the log was replaced). `expired`: it is older than the log keeps; `data` holds what the log still has after it',
    ),
});

/** What `GET /v1/poll` answers. */
export type PollAnswer = z.output<typeof pollAnswerSchema>;
