export * from './memory-transport.js';
export * from './outbox-suite.js';
export * from './store-suite.js';
export * from './test-app.js';
export * from './transport-harness.js';
export * from './transport-suite.js';
export * from './wait-for.js';
export * from './transport-context.js';
