import { type Logger, silentLogger } from '@herald/core';

/** A logger for what is made before the logger it belongs to: it writes to the one `writeTo` gives it, and drops what comes before. */
export interface DeferredLogger extends Logger {
  writeTo(logger: Logger): void;
}

/** A {@link DeferredLogger}; its children (`child({ component })`) write to the same logger's children, once it is given. */
export function deferredLogger(): DeferredLogger {
  let target: Logger = silentLogger;
  const withBindings = (bindings: readonly Record<string, unknown>[]): Logger => {
    let made: { from: Logger; logger: Logger } | undefined;
    const current = (): Logger => {
      if (made?.from !== target) made = { from: target, logger: bindings.reduce((logger, binding) => logger.child(binding), target) };
      return made.logger;
    };
    return {
      debug: (...args) => current().debug(...args),
      info: (...args) => current().info(...args),
      warn: (...args) => current().warn(...args),
      error: (...args) => current().error(...args),
      child: (binding) => withBindings([...bindings, binding]),
    };
  };
  return Object.assign(withBindings([]), {
    writeTo(logger: Logger) {
      target = logger;
    },
  });
}
