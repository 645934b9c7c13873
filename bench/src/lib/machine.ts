import { cpus, loadavg, release, totalmem, type } from 'node:os';

/** One line describing the machine, e.g. `AMD EPYC ×2, 24 GB RAM, Linux 6.1, Node v20.20.2, load average 1.20 0.90 0.70`. */
export function machineNote(): string {
  const processors = cpus();
  const model = processors[0]?.model.trim() ?? 'unknown CPU';
  const load = loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
  return `${model} ×${processors.length}, ${Math.round(totalmem() / 2 ** 30)} GB RAM, ${type()} ${release()}, Node ${process.version}, load average ${load}`;
}

/**
 * The line a benchmark section opens with: when, with which command, and on what, e.g.
 * `_Measured 2026-11-27 04:10 UTC with \`pnpm bench core\` on AMD EPYC ×2, …, load average 1.2 0.9 0.7 at the start._`
 */
export function measuredWith(command: string): string {
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
  return `_Measured ${when} UTC with \`${command}\` on ${machineNote()} at the start._`;
}
