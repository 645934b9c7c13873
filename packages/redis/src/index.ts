export * from './redis-broker.js';
export * from './redis-rate-limits.js';
