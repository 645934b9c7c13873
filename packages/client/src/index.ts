export * from './delivered-event.js';
export * from './event-stream.js';
export * from './herald-socket.js';
export * from './poll-events.js';
export * from './reconnect-backoff.js';
export * from './retry-after.js';
export * from './webhook-middleware.js';
export * from './webhook-verify.js';
