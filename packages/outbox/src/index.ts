export * from './attempt-outcome.js';
export * from './outbox.js';
export * from './push-options.js';
export * from './push-transport.js';
export * from './replay-runner.js';
export * from './retry-schedule.js';
export * from './sql-outbox.js';
export * from './sql-outbox-schema.js';
