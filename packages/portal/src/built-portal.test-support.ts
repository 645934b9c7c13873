import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'vite';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The portal app, built from the sources under test, apart from app/dist: other packages' tests serve that one meanwhile (`herald serve`). */
    portalAppDirectory: string;
    /** The element built from src/herald-portal.ts as one ES module, for a provider's page. */
    portalElementBundle: string;
  }
}

const packageDirectory = resolve(import.meta.dirname, '..');

/** The global setup of the portal's tests: builds the app and the element once, for every browser test file run side by side. */
export default async function buildThePortal(project: TestProject): Promise<() => void> {
  const appDirectory = mkdtempSync(join(tmpdir(), 'herald-portal-app-'));
  await build({ root: resolve(packageDirectory, 'app'), configFile: resolve(packageDirectory, 'vite.config.ts'), build: { outDir: appDirectory, emptyOutDir: true } });
  const bundled = await build({
    configFile: false,
    logLevel: 'warn',
    build: { write: false, minify: false, lib: { entry: resolve(packageDirectory, 'src/herald-portal.ts'), formats: ['es'], fileName: 'herald-portal' } },
  });
  const chunk = (Array.isArray(bundled) ? bundled : [bundled]).flatMap((output) => ('output' in output ? output.output : [])).find((file) => file.type === 'chunk');
  if (chunk?.type !== 'chunk') throw new Error('vite built no module of the element');
  project.provide('portalAppDirectory', appDirectory);
  project.provide('portalElementBundle', chunk.code);
  return () => rmSync(appDirectory, { recursive: true, force: true });
}
