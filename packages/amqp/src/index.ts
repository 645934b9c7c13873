export * from './amqp-config.js';
export * from './amqp-pool.js';
export * from './amqp-transport.js';
