/** The at-most-once jsonl transport, for the push cases' processes. */
import { atMostOnceJsonlTransport } from './jsonl-transport.test-support.js';

export const transport = () => atMostOnceJsonlTransport();
