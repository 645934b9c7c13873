import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';

/** Where `vite build` puts the portal app (`pnpm --filter @herald/portal build`). */
export const portalAppDirectory = fileURLToPath(new URL('../app/dist', import.meta.url));

/** Options of {@link portal}. */
export interface PortalOptions {
  /** The directory of the built app. @default {@link portalAppDirectory} */
  directory?: string;
}

/**
 * The consumer portal as an express router, to mount at `/portal` next to Herald (`app.use('/portal', portal())`
 * before `app.use(herald.app)`): the links of `POST /v1/portal-sessions` open it. The app reads its token from
 * the URL fragment and calls the API one level up. Throws when the app is not built.
 */
export function portal(options: PortalOptions = {}): Router {
  const directory = options.directory ?? portalAppDirectory;
  if (!existsSync(`${directory}/index.html`)) throw new Error(`The portal app is not built in ${directory}: run \`pnpm --filter @herald/portal build\``);
  const router = express.Router({ strict: true });
  // Its assets are relative to /portal/: send /portal there, the fragment (the token) stays with the browser.
  router.get('/', (req, res, next) => (req.originalUrl.split('?')[0]?.endsWith('/') ? next() : res.redirect(308, `${req.baseUrl}/`)));
  router.use((_req, res, next) => {
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Content-Security-Policy', "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'");
    next();
  });
  router.use(express.static(directory, { index: 'index.html' }));
  return router;
}
