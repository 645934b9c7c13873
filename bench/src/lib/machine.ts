import { cpus, freemem, loadavg, release, totalmem, type } from 'node:os';

/** One line describing where a benchmark ran, e.g. `AMD EPYC ×2, 24 GB RAM, Linux 6.1, Node v20.20.2, load 1.2 0.9 0.7`. */
export function machineNote(): string {
  const processors = cpus();
  const model = processors[0]?.model.trim() ?? 'unknown CPU';
  const gigabytes = (bytes: number) => Math.round(bytes / 2 ** 30);
  const load = loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
  return `${model} ×${processors.length}, ${gigabytes(totalmem())} GB RAM (${gigabytes(freemem())} GB free), ${type()} ${release()}, Node ${process.version}, load average ${load} at start`;
}
