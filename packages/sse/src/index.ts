export * from './cors-policy.js';
export * from './sse-frame.js';
export * from './sse-transport.js';
export * from './stream-request.js';
