import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh folder under the OS temp folder (a real disk here, so fsync costs what it costs). */
export interface TempDirectory {
  readonly path: string;
  /** A path inside the folder. */
  file(name: string): string;
  remove(): void;
}

export function tempDirectory(prefix = 'herald-bench-'): TempDirectory {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    file: (name) => join(path, name),
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}
