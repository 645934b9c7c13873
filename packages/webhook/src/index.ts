// The address guard moved to @herald/outbox, for every push transport; re-exported here as before.
export {
  bareHostname,
  guardedLookup,
  type LookupFunction,
  type RefusedAddressClass,
  RefusedTargetError,
  refusedAddressClass,
  refusedUrlTarget,
} from '@herald/outbox';
export * from './endpoint-verifier.js';
export * from './http-sender.js';
export * from './retry-after.js';
export * from './secret-rotation.js';
export * from './signing.js';
export * from './webhook-config.js';
export * from './webhook-options.js';
export * from './webhook-outcome.js';
export * from './webhook-transport.js';
