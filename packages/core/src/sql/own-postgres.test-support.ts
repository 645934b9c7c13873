/** A PostgreSQL cluster of the test's own, made with the machine's initdb and pg_ctl, that takes TLS connections only. */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../../testkit/src/free-port.test-support.js';
import { testTls } from '../../../webhook/src/test-tls.test-support.js';

const run = promisify(execFile);

export interface OwnPostgres {
  /** Its port on localhost, whose name its certificate is for; user `postgres`, database `postgres`, no password. */
  port: number;
  close(): Promise<void>;
}

/**
 * Starts a cluster presenting {@link testTls}'s certificate for `localhost`, whose `pg_hba.conf` lets in TLS
 * connections only. As root, it runs as the `postgres` user, since initdb refuses root.
 */
export async function ownPostgresWithTls(): Promise<OwnPostgres> {
  const bin = (await run('pg_config', ['--bindir'])).stdout.trim();
  const asOwner = process.getuid?.() === 0 ? Number((await run('id', ['-u', 'postgres'])).stdout) : undefined;
  const command = (program: string, args: string[]) =>
    asOwner === undefined ? run(join(bin, program), args) : run('runuser', ['-u', 'postgres', '--', join(bin, program), ...args]);
  const folder = mkdtempSync(join(tmpdir(), 'herald-postgres-'));
  const data = join(folder, 'data');
  if (asOwner !== undefined) chownSync(folder, asOwner, -1);
  await command('initdb', ['-D', data, '--auth=trust', '-U', 'postgres', '-E', 'UTF8']);
  copyFileSync(testTls.cert, join(data, 'server.crt'));
  copyFileSync(testTls.key, join(data, 'server.key'));
  // PostgreSQL refuses a key that others may read.
  chmodSync(join(data, 'server.key'), 0o600);
  writeFileSync(join(data, 'pg_hba.conf'), 'hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n');
  for (const file of ['server.crt', 'server.key', 'pg_hba.conf']) if (asOwner !== undefined) chownSync(join(data, file), asOwner, -1);
  const port = await freePort();
  const settings = `-p ${port} -k ${folder} -c listen_addresses=localhost -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key`;
  await command('pg_ctl', ['-D', data, '-o', settings, '-l', join(folder, 'log'), '-w', 'start']);
  return {
    port,
    async close() {
      await command('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => {});
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
