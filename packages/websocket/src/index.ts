export * from './websocket-options.js';
export * from './websocket-protocol.js';
export * from './websocket-transport.js';
