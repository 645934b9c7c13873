export * from './api-keys.js';
export * from './create-herald.js';
export * from './options.js';
export * from './problem.js';
export * from './route-mount.js';
