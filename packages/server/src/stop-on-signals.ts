import { constants } from 'node:os';
import type { Logger } from '@herald/core';

const stopSignals = ['SIGTERM', 'SIGINT'] as const;

/**
 * Stops the process gracefully on SIGTERM or SIGINT: logs `stopping`, awaits `stop`, logs `stopped` and exits 0 (when
 * `stop` fails: logs `stopping failed` and exits 1). `listen()` does this with `herald.close()` unless told
 * `handleSignals: false`; call it yourself when more has to finish after Herald, such as an OpenTelemetry SDK that
 * sends the spans it still holds:
 *
 * ```ts
 * await herald.listen({ handleSignals: false });
 * stopOnSignals(async () => {
 *   await herald.close();
 *   await sdk.shutdown();
 * }, herald.logger);
 * ```
 *
 * A second signal while it stops ends the process at once, with 128 and the signal's number, as a shell reports a
 * process the signal killed: 130 for SIGINT, 143 for SIGTERM.
 *
 * @returns a function that removes the handlers; once a signal came, it leaves them, and the process stops.
 */
export function stopOnSignals(stop: () => Promise<void>, logger: Logger): () => void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(128 + constants.signals[signal]);
    stopping = true;
    logger.info({ signal }, 'stopping');
    Promise.resolve()
      .then(() => stop())
      .then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'stopping failed');
          process.exit(1);
        },
      );
  };
  for (const signal of stopSignals) process.on(signal, onSignal);
  return () => {
    if (stopping) return;
    for (const signal of stopSignals) process.off(signal, onSignal);
  };
}
