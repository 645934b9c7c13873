export * from './redis-broker.js';
export * from './redis-rate-limits.js';
export type { RedisOptions } from './redis-connection.js';
