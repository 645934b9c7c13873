import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { oneLine } from './cli-error.js';
import type { ConfigProblem } from './config-problems.js';

/** A PEM member of `tls` in the config: the PEM text, or `{ file }`, the path of a PEM file (relative to the config), read at start. */
export type PemSource = string | { file: string };

/**
 * `tls` in the config, for a Redis broker or rate-limit store, the AMQP and NATS transports: `ca`, the authorities
 * the server's certificate must be signed by (they replace those Node.js trusts), and `cert` and `key`, a client
 * certificate and its key, each as PEM text or `{ "file": "/etc/ssl/ca.pem" }`, or a list of them.
 */
export interface ConfigTls {
  ca?: PemSource | PemSource[];
  cert?: PemSource | PemSource[];
  key?: PemSource | PemSource[];
}

/** What a PEM member must hold: certificates (`ca`, `cert`) or a private key (`key`). */
type PemKind = 'certificate' | 'private key';

const pemMembers: Readonly<Record<keyof ConfigTls, PemKind>> = { ca: 'certificate', cert: 'certificate', key: 'private key' };

function readError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return oneLine(error);
}

/** Why `text`, read from `file`, is not what a member of `kind` takes; undefined when it is. */
function pemProblem(text: string, file: string, kind: PemKind): string | undefined {
  if (kind === 'certificate') {
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) return `"${file}" holds no PEM certificate (-----BEGIN CERTIFICATE-----)`;
    for (const block of blocks) {
      try {
        new X509Certificate(block);
      } catch (error) {
        return `"${file}" holds a certificate that cannot be read: ${oneLine(error)}`;
      }
    }
    return undefined;
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) return `"${file}" holds no PEM private key (-----BEGIN PRIVATE KEY-----)`;
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: 4,ENCRYPTED/m.test(text)) {
    return `"${file}" holds an encrypted private key, whose passphrase a JSON config cannot give: decrypt it (openssl pkey -in key.pem -out plain-key.pem), or give key: [{ pem, passphrase }] in a .ts or .js config`;
  }
  try {
    createPrivateKey(text);
  } catch (error) {
    return `"${file}" holds a private key that cannot be read: ${oneLine(error)}`;
  }
  return undefined;
}

/** The PEM text of `file` (relative to `directory`), checked to hold what a member of `kind` takes; or why not. */
export async function readPemFile(file: string, directory: string, kind: PemKind): Promise<{ pem: string } | { problem: string }> {
  const path = resolve(directory, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    return { problem: `cannot read "${path}": ${readError(error)}` };
  }
  const problem = pemProblem(text, path, kind);
  return problem === undefined ? { pem: text } : { problem };
}

/**
 * `tls` with every `{ file }` of its `ca`, `cert` and `key` (alone or in a list) replaced by the file's PEM text:
 * what `tls.connect` takes. Other values are left as they are: PEM text, or what a `.ts` config gives (a Buffer,
 * `{ pem, passphrase }`). Each file that is missing, unreadable or not PEM of the member's kind is a problem at
 * its path (`broker.tls.ca`, `transports.nats.tls.key`).
 */
export async function readTlsFiles(
  tls: Readonly<Record<string, unknown>>,
  path: readonly PropertyKey[],
  directory: string,
): Promise<{ tls: Record<string, unknown>; problems: ConfigProblem[] }> {
  const problems: ConfigProblem[] = [];
  const read = async (value: unknown, at: readonly PropertyKey[], kind: PemKind): Promise<unknown> => {
    if (typeof value !== 'object' || value === null || !('file' in value)) return value;
    const { file, ...rest } = value as { file: unknown };
    if (typeof file !== 'string' || file === '' || Object.keys(rest).length > 0) {
      problems.push({ path: at, message: 'expected PEM text or { "file": "<path of a PEM file>" }' });
      return value;
    }
    const found = await readPemFile(file, directory, kind);
    if ('problem' in found) problems.push({ path: at, message: found.problem });
    return 'pem' in found ? found.pem : value;
  };
  const resolved: Record<string, unknown> = { ...tls };
  for (const [member, kind] of Object.entries(pemMembers)) {
    const value = tls[member];
    if (value === undefined) continue;
    const at = [...path, member];
    resolved[member] = Array.isArray(value) ? await Promise.all(value.map((item, index) => read(item, [...at, index], kind))) : await read(value, at, kind);
  }
  return { tls: resolved, problems };
}

/** The files of a `postgres://` URL that `pg` reads, and what each holds. */
const postgresFiles: Readonly<Record<string, PemKind>> = { sslrootcert: 'certificate', sslcert: 'certificate', sslkey: 'private key' };

/**
 * A `postgres://` URL of the config whose `sslrootcert`, `sslcert` and `sslkey` (the files `pg` reads) are checked
 * now, each missing, unreadable or not PEM one a problem at `path`, and made absolute: a path in the config is
 * relative to the config, where `pg` would read it from the working directory. Other URLs are returned as they are.
 */
export async function checkDatabaseFiles(url: string, path: readonly PropertyKey[], directory: string): Promise<{ url: string; problems: ConfigProblem[] }> {
  const query = url.indexOf('?');
  if (!/^postgres(ql)?:\/\//.test(url) || query === -1) return { url, problems: [] };
  const params = new URLSearchParams(url.slice(query + 1));
  const problems: ConfigProblem[] = [];
  let changed = false;
  for (const [name, kind] of Object.entries(postgresFiles)) {
    const file = params.get(name);
    if (file === null) continue;
    const found = await readPemFile(file, directory, kind);
    if ('problem' in found) problems.push({ path, message: `${name}: ${found.problem}` });
    if (resolve(directory, file) !== file) {
      params.set(name, resolve(directory, file));
      changed = true;
    }
  }
  return { url: changed ? `${url.slice(0, query)}?${params}` : url, problems };
}
