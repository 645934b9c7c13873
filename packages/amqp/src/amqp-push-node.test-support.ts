/** The AMQP transport for the push cases' processes: a lease short enough for a killed process's deliveries to come back soon. */
import { amqp } from './amqp-transport.js';

export const transport = () => amqp({ retrySchedule: [0, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4], timeout: 3_000, lease: 8_000, pollInterval: 100 });
