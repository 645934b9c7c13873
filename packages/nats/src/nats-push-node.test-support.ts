/**
 * The NATS transport for the push cases' processes: a lease short enough for a killed process's deliveries to
 * come back soon, and a retry schedule long enough (30 s) that no delivery gives up while its destination refuses
 * it, however loaded the machine.
 */
import { nats } from './nats-transport.js';

export const transport = () => nats({ retrySchedule: [0, ...Array<number>(60).fill(0.5)], timeout: 3_000, lease: 8_000, pollInterval: 100 });
