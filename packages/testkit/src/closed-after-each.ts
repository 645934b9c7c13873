import { afterEach } from 'vitest';

/** Anything a test opens and must close: an app, a client, a stream. */
export interface Closable {
  close(): unknown;
}

/**
 * A test file's app and what its tests open, closed after each test, what was opened first: `start` starts
 * the app with `startApp` and keeps it, `track` keeps anything with a `close()` and returns it, `forget` lets
 * go of the app when the test closed it itself.
 */
export function appClosedAfterEach<TApp extends Closable, TArgs extends unknown[]>(startApp: (...args: TArgs) => Promise<TApp>) {
  let open: TApp | undefined;
  const opened: Closable[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((closable) => closable.close()));
    await open?.close();
    open = undefined;
  });
  return {
    async start(...args: TArgs): Promise<TApp> {
      open = await startApp(...args);
      return open;
    },
    track<T extends Closable>(closable: T): T {
      opened.push(closable);
      return closable;
    },
    forget(): void {
      open = undefined;
    },
  };
}
