import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A tiny request/response over the IPC channel between a benchmark and the processes it forks. */
type Request = { id: number; command: string; args: any };
type Response = { id: number; result?: any; error?: string };

/** In a forked child: answers the parent's calls with `handlers`, and ends with the parent. Send `'up'` once ready. */
export function serveRequests(handlers: Record<string, (args: any) => Promise<unknown> | unknown>): void {
  process.once('disconnect', () => process.exit(0));
  process.on('message', async (message: Request) => {
    try {
      const handler = handlers[message.command];
      if (!handler) throw new Error(`unknown command ${message.command}`);
      const result = await handler(message.args);
      if (process.connected) process.send?.({ id: message.id, result } satisfies Response);
    } catch (error) {
      if (process.connected) process.send?.({ id: message.id, error: String((error as Error)?.stack ?? error) } satisfies Response);
    }
  });
}

export interface Child {
  call<T = any>(command: string, args?: unknown): Promise<T>;
  kill(): Promise<void>;
}

/** Forks `script` (an `import.meta.url`) with `role` as its arguments; resolves once the child says `'up'`. */
export async function spawnChild(script: string, role: string[], gc = false): Promise<Child> {
  const child: ChildProcess = fork(fileURLToPath(script), role, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [...process.execArgv, ...(gc ? ['--expose-gc'] : []), '--max-old-space-size=4096'],
  });
  const up = new Promise<void>((resolve, reject) => {
    child.once('message', (message) => (message === 'up' ? resolve() : reject(new Error(`${role.join(' ')}: ${String(message)}`))));
    child.once('exit', (code) => reject(new Error(`${role.join(' ')} exited with ${code} before it was up`)));
  });
  let next = 0;
  const pending = new Map<number, { resolve(value: any): void; reject(error: Error): void }>();
  child.on('message', (message: Response | 'up') => {
    if (message === 'up') return;
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) waiter?.reject(new Error(message.error));
    else waiter?.resolve(message.result);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', (code) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`${role.join(' ')} exited with ${code}`));
  });
  await up;
  return {
    call: (command, args) =>
      new Promise((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        child.send({ id, command, args } satisfies Request);
      }),
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Collects garbage fully, with or without `--expose-gc`. */
export function collectGarbage(): void {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < 3; i++) gc();
}

/** This process's memory after collecting garbage. */
export function memory(): { rss: number; heap: number } {
  collectGarbage();
  const usage = process.memoryUsage();
  return { rss: usage.rss, heap: usage.heapUsed + usage.external };
}
