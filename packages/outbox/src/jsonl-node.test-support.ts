/** The durable jsonl transport, for the push cases' processes. */
import { jsonlTransport, quickDelivery } from './jsonl-transport.test-support.js';

export const transport = () => jsonlTransport(quickDelivery);
