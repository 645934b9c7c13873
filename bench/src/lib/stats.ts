/** The value at percentile `p` (0–100) of `values`, by nearest rank; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** The largest value: the best of several throughput runs, the one least disturbed by other load. */
export function best(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : Math.max(...values);
}

/** What the goal of a ratio is: at least or at most some value. */
export type Goal = { atLeast: number } | { atMost: number };

export function meetsGoal(ratio: number, goal: Goal): boolean {
  return 'atLeast' in goal ? ratio >= goal.atLeast : ratio <= goal.atMost;
}

/** e.g. `≥ 0.5` */
export function formatGoal(goal: Goal): string {
  return 'atLeast' in goal ? `≥ ${goal.atLeast}` : `≤ ${goal.atMost}`;
}

/** `met` or `**missed**`, for a table cell. */
export function verdict(ratio: number, goal: Goal): string {
  return meetsGoal(ratio, goal) ? 'met' : '**missed**';
}

/** e.g. `0.62` */
export function formatRatio(ratio: number): string {
  return ratio.toFixed(2);
}

/** e.g. `12,345` */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** e.g. `1.23 µs`, `4.5 ms` */
export function formatDuration(milliseconds: number): string {
  if (milliseconds < 1) return `${(milliseconds * 1000).toFixed(2)} µs`;
  if (milliseconds < 1000) return `${milliseconds.toFixed(2)} ms`;
  return `${(milliseconds / 1000).toFixed(2)} s`;
}

/** `subject ÷ baseline` for each round, in round order. */
export function roundRatios(subject: { rounds: readonly number[] }, baseline: { rounds: readonly number[] }): number[] {
  return subject.rounds.map((rate, round) => rate / (baseline.rounds[round] as number));
}
