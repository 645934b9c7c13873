/** Writes a progress line to stderr, so stdout stays the markdown report. */
export function progress(message: string): void {
  process.stderr.write(`  · ${message}\n`);
}

/**
 * Runs every variant once per round, in the same order each round, so a baseline and its subject
 * see the same drift in the machine's load. Returns every variant's samples, in round order.
 */
export async function interleaved<K extends string>(
  rounds: number,
  variants: Record<K, () => Promise<number>>,
  describe: (name: K, value: number) => string = (name, value) => `${name}: ${value.toFixed(1)}`,
): Promise<Record<K, number[]>> {
  const names = Object.keys(variants) as K[];
  const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  for (let round = 1; round <= rounds; round++) {
    for (const name of names) {
      const value = await variants[name]();
      samples[name].push(value);
      progress(`round ${round}/${rounds} ${describe(name, value)}`);
    }
  }
  return samples;
}

/** Reads a positive number from the environment, e.g. `BENCH_ROUNDS=5`, else the default. */
export function envNumber(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}
