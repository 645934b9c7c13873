export * from './nats-config.js';
export * from './nats-pool.js';
export * from './nats-transport.js';
