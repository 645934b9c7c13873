export * from './poll-query.js';
export * from './poll-transport.js';
