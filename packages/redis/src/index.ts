export * from './redis-broker.js';
