import { HeraldError } from './errors.js';

/**
 * No durable subscription with that id that this principal may reach: 404. Another consumer's
 * subscription gets the same answer as one that does not exist, so ids cannot be probed.
 */
export class SubscriptionNotFoundError extends HeraldError {
  override readonly name: string = 'SubscriptionNotFoundError';
  constructor(readonly subscriptionId: string) {
    super('not-found', 404, `no subscription "${subscriptionId}" for this consumer`, 'Not found');
  }
}

/** The durable subscription is its principal's, but of another transport: 404 `wrong-transport`. */
export class WrongTransportError extends HeraldError {
  override readonly name: string = 'WrongTransportError';
  constructor(
    readonly subscriptionId: string,
    readonly transport: string,
    expected: string,
  ) {
    super('wrong-transport', 404, `subscription "${subscriptionId}" is for transport "${transport}", not "${expected}"`, 'Wrong transport');
  }
}
