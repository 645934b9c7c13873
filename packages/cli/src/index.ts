export { defineConfig, type EventTypeObject, type EventTypeSource, type HeraldConfig } from './config-schema.js';
