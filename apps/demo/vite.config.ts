import { defaultClientConditions, defineConfig } from 'vite';

/** Builds the page (page/) into dist/page, which the demo server serves. Workspace packages resolve to their sources. */
export default defineConfig({
  root: 'page',
  logLevel: 'warn',
  resolve: { conditions: ['herald-source', ...defaultClientConditions] },
  build: { outDir: '../dist/page', emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
});
