import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

/** Writes CPU profiles of measured parts into a folder (`<what>-<n>.cpuprofile`), or does nothing without one. */
export class CpuProfiles {
  readonly #dir: string | undefined;
  #count = 0;

  /** `dir`: the folder, typically from the environment (e.g. `BENCH_WEBHOOK_PROFILE`); none, no profiles. */
  constructor(dir: string | undefined) {
    this.#dir = dir;
  }

  /** Profiles this process from now until the returned function is called. */
  async start(what: string): Promise<() => Promise<void>> {
    const dir = this.#dir;
    if (!dir) return async () => {};
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    // 100 µs rather than the default 1 ms: a drain of 10,000 deliveries lasts about a second.
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
    return async () => {
      const { profile } = await session.post('Profiler.stop');
      this.#count += 1;
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}/${what}-${this.#count}.cpuprofile`, JSON.stringify(profile));
      session.disconnect();
    };
  }
}
