import { defineConfig } from 'vite';

/** Builds the portal app (app/) into app/dist (apart from the tsc build in dist), which `portal()` serves; assets are relative, so it works under any path. */
export default defineConfig({
  root: 'app',
  base: './',
  // Lit's production build whatever NODE_ENV says: a build run by the tests (NODE_ENV=test) would otherwise take its development build.
  resolve: { conditions: ['module', 'browser', 'production'] },
  logLevel: 'warn',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
});
