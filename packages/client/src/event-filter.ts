/**
 * A payload filter, as every Herald transport takes it: the same JSON as `EventFilter` of `@herald/core`.
 * The client keeps its own copy of the types so that it depends on nothing at run time.
 */

/** What a condition compares with: JSON's scalars. */
export type FilterScalar = string | number | boolean | null;

/** The operators of one path's condition; several in one object must all hold. */
export interface FilterOperators {
  $eq?: FilterScalar;
  $ne?: FilterScalar;
  $in?: readonly FilterScalar[];
  $nin?: readonly FilterScalar[];
  $gt?: number | string;
  $gte?: number | string;
  $lt?: number | string;
  $lte?: number | string;
  $exists?: boolean;
  $startsWith?: string;
}

/** A path's condition: operators, or a bare value, which means `$eq`. */
export type FilterCondition = FilterScalar | FilterOperators;

/**
 * A payload filter: dotted paths into the envelope (`data.total`, `data.customer.country`, `subject`,
 * `type`) with their conditions, and `$and`, `$or`, `$not` over filters. Every member must hold; `{}`
 * lets every event through. The server checks it against the event types' schemas when it arrives.
 *
 * ```ts
 * const big: EventFilter = { 'data.total': { $gte: 1000 }, 'data.customer.country': { $in: ['DE', 'AT'] } };
 * ```
 */
export interface EventFilter {
  $and?: readonly EventFilter[];
  $or?: readonly EventFilter[];
  $not?: EventFilter;
  readonly [path: string]: FilterCondition | EventFilter | readonly EventFilter[] | undefined;
}
