export * from './api-keys.js';
export * from './connection-limiter.js';
export * from './create-herald.js';
export * from './herald-handlers.js';
export * from './options.js';
export * from './problem.js';
export * from './route-mount.js';
export type { HttpServer } from './server-attachment.js';
export * from './stop-on-signals.js';
