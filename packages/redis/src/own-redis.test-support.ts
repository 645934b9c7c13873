import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../../testkit/src/free-port.test-support.js';

// A redis-server of a test's own, for the tests that stop Redis (packages/redis and the integration tests).

/** A redis-server on a free port, with no persistence, that a test can kill and start again, or freeze (SIGSTOP) and thaw. */
export interface OwnRedis {
  url: string;
  kill(): Promise<void>;
  start(): Promise<void>;
  freeze(): void;
  thaw(): void;
}

/**
 * With `tls` (the paths of its certificate, its key and an authority), it takes TLS connections only, at
 * `rediss://localhost:<port>`, from clients that present a certificate the authority signed. It listens on
 * 127.0.0.1, and on ::1 where the machine has it. `config` is more of redis-server's arguments: `['--timeout', '1']`.
 */
export async function ownRedis({ tls, config = [] }: { tls?: { cert: string; key: string; ca: string }; config?: string[] } = {}): Promise<OwnRedis> {
  const port = await freePort();
  const listen = tls
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'yes']
    : ['--port', String(port)];
  let child: ChildProcess | undefined;
  const start = async () => {
    const proc = spawn('redis-server', [...listen, '--bind', '127.0.0.1', '-::1', '--save', '', '--appendonly', 'no', ...config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      proc.once('error', reject);
      proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
      proc.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) resolve();
      });
    });
  };
  const kill = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  };
  await start();
  return { url: tls ? `rediss://localhost:${port}` : `redis://127.0.0.1:${port}`, kill, start, freeze: () => child?.kill('SIGSTOP'), thaw: () => child?.kill('SIGCONT') };
}
