/** Writes a progress line to stderr, so stdout stays the markdown report. */
export function progress(message: string): void {
  process.stderr.write(`  · ${message}\n`);
}

/** Does as much work as it can in about `milliseconds` and says how many units (events, requests) it did. */
export type Workload = (milliseconds: number) => Promise<number>;

export interface AlternateOptions {
  rounds: number;
  /** Turns each workload gets per round. */
  slices: number;
  sliceMilliseconds: number;
}

/** Each workload's rate (units/s) in each round, and over all rounds. */
export interface Rates {
  rounds: number[];
  total: number;
  /**
   * CPU time (user + system) this process spent per unit, in µs, in each round and over all: the
   * cost of in-process work, which other load on the machine disturbs far less than the rate.
   */
  cpu: { rounds: number[]; total: number };
}

interface Tally {
  units: number;
  seconds: number;
  cpuMicroseconds: number;
}

/**
 * Runs the workloads in short turns, one after another, rotating who goes first, so a baseline and
 * its subject see the same machine: on a shared machine the load (and the disk's fsync latency)
 * drifts over seconds, far more than the differences measured.
 */
export async function alternate<K extends string>(options: AlternateOptions, workloads: Record<K, Workload>): Promise<Record<K, Rates>> {
  const names = Object.keys(workloads) as K[];
  const tally = () => Object.fromEntries(names.map((name) => [name, { units: 0, seconds: 0, cpuMicroseconds: 0 }])) as Record<K, Tally>;
  const totals = tally();
  const rates = Object.fromEntries(names.map((name) => [name, { rounds: [] as number[], total: 0, cpu: { rounds: [] as number[], total: 0 } }])) as Record<K, Rates>;
  let turn = 0;
  for (let round = 1; round <= options.rounds; round++) {
    const inRound = tally();
    for (let slice = 0; slice < options.slices; slice++, turn++) {
      for (let i = 0; i < names.length; i++) {
        const name = names[(turn + i) % names.length] as K;
        const started = performance.now();
        const cpuBefore = process.cpuUsage();
        const units = await workloads[name](options.sliceMilliseconds);
        const cpu = process.cpuUsage(cpuBefore);
        const seconds = (performance.now() - started) / 1000;
        for (const sum of [inRound[name], totals[name]]) {
          sum.units += units;
          sum.seconds += seconds;
          sum.cpuMicroseconds += cpu.user + cpu.system;
        }
      }
    }
    for (const name of names) {
      rates[name].rounds.push(inRound[name].units / inRound[name].seconds);
      rates[name].cpu.rounds.push(inRound[name].cpuMicroseconds / inRound[name].units);
    }
    progress(`round ${round}/${options.rounds}: ${names.map((name) => `${name} ${Math.round(rates[name].rounds.at(-1) as number)}/s`).join(', ')}`);
  }
  for (const name of names) {
    rates[name].total = totals[name].units / totals[name].seconds;
    rates[name].cpu.total = totals[name].cpuMicroseconds / totals[name].units;
  }
  return rates;
}

/** Reads a positive number from the environment, e.g. `BENCH_ROUNDS=5`, else the default. */
export function envNumber(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}
