import autocannon from 'autocannon';
import { type Child, spawnChild } from './child-process.js';
import { type AlternateOptions, envNumber } from './rounds.js';
import { median } from './stats.js';

/** How the server benchmarks take turns: `BENCH_ROUNDS` rounds of `BENCH_SERVER_SLICES` turns of `BENCH_SERVER_SLICE_SECONDS`. */
export const serverSchedule: AlternateOptions = {
  rounds: envNumber('BENCH_ROUNDS', 3),
  slices: envNumber('BENCH_SERVER_SLICES', 2),
  sliceMilliseconds: envNumber('BENCH_SERVER_SLICE_SECONDS', 5) * 1000,
};
/** Each server's warm-up before the turns, in seconds. */
export const serverWarmupSeconds = 3;
/** autocannon's connections, one request in flight on each. */
export const serverConnections = 64;

/** A server in a child process of its own (its `port` and `cpu` answered over IPC), loaded by autocannon from this one. */
export interface LoadedServer<TKind extends string> {
  kind: TKind;
  port: number;
  child: Child;
  /** Requests answered 2xx, warm-ups included. */
  answered: number;
  /** CPU time the server spent under measured load, in µs, and the requests it answered then. */
  cpuMicroseconds: number;
  measuredRequests: number;
  latencies: { p50: number; p99: number }[];
}

/** Spawns `script` with `['serve', kind]`: a child that serves on 127.0.0.1 and answers `port` and `cpu`. */
export async function startServer<TKind extends string>(script: string, kind: TKind): Promise<LoadedServer<TKind>> {
  const child = await spawnChild(script, ['serve', kind]);
  return { kind, port: await child.call<number>('port'), child, answered: 0, cpuMicroseconds: 0, measuredRequests: 0, latencies: [] };
}

/**
 * Loads `server` with `request` from `connections` connections for `seconds`; resolves with the requests
 * answered 2xx. Any other answer or a failed request fails the benchmark. Unless it is a warm-up
 * (`measured` false), the server's CPU time and the latencies are counted.
 */
export async function loadServer<TKind extends string>(
  server: LoadedServer<TKind>,
  request: Pick<autocannon.Options, 'method' | 'headers' | 'body'> & { path: string },
  connections: number,
  seconds: number,
  measured = true,
): Promise<number> {
  const { path, ...options } = request;
  const cpuBefore = await server.child.call<number>('cpu');
  const result = await autocannon({ url: `http://127.0.0.1:${server.port}${path}`, ...options, connections, duration: seconds });
  const cpuAfter = await server.child.call<number>('cpu');
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${server.kind}: ${result.non2xx} answers were not 2xx and ${result.errors} requests failed`);
  server.answered += result['2xx'];
  if (measured) {
    server.cpuMicroseconds += cpuAfter - cpuBefore;
    server.measuredRequests += result['2xx'];
    server.latencies.push({ p50: result.latency.p50, p99: result.latency.p99 });
  }
  return result['2xx'];
}

/** The server's CPU time per measured request, in whole µs. */
export const cpuPerRequest = (server: LoadedServer<string>) => (server.cpuMicroseconds / server.measuredRequests).toFixed(0);

/** The median p50 and p99 latency over the measured turns. */
export const latencyOf = (server: LoadedServer<string>) =>
  `${median(server.latencies.map((l) => l.p50))} ms / ${median(server.latencies.map((l) => l.p99))} ms`;
