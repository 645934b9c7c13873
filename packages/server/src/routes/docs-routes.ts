import type { RequestHandler, Router } from 'express';
import { z } from 'zod';
import type { ApiSurface, PlainRoute } from '../api-surface.js';
import { asyncApiDocument } from '../asyncapi-document.js';
import { docsPage } from '../docs-page.js';
import type { HeraldMetrics } from '../metrics.js';
import { openApiDocument } from '../openapi-document.js';

/** The unauthenticated GETs the server answers itself; the documents describe them from this list. */
export const operationalRoutes: readonly PlainRoute[] = [
  { path: '/healthz', summary: 'The process answers', tag: 'operations', body: z.object({ status: z.literal('ok') }) },
  { path: '/readyz', summary: 'The store answers and the server is not stopping (else 503)', tag: 'operations', body: z.object({ status: z.literal('ready') }) },
  { path: '/metrics', summary: 'Prometheus metrics', tag: 'operations', mediaType: 'text/plain' },
  { path: '/openapi.json', summary: 'This OpenAPI 3.1 document', tag: 'documents' },
  { path: '/asyncapi.json', summary: 'The AsyncAPI 3.0 document of the pushed events', tag: 'documents' },
  { path: '/docs', summary: 'Both documents as a page', tag: 'documents', mediaType: 'text/html' },
];

/**
 * Mounts `/openapi.json`, `/asyncapi.json`, `/docs` and `/metrics`, without authentication, each behind `admitted`
 * (which refuses them while the server stops); the documents name the path they are served under.
 */
export function mountDocsRoutes(router: Router, surface: () => ApiSurface, metrics: HeraldMetrics, admitted: RequestHandler): void {
  // `baseUrl` is the path Herald is mounted under, whether by `attach` or by an express app of yours.
  router.get('/openapi.json', admitted, (req, res) => {
    res.json(openApiDocument(surface(), { basePath: req.baseUrl }));
  });
  router.get('/asyncapi.json', admitted, (req, res) => {
    const host = req.get('host');
    res.json(asyncApiDocument(surface(), { basePath: req.baseUrl, ...(host ? { host } : {}) }));
  });
  router.get('/docs', admitted, (_req, res) => {
    res.type('html').send(docsPage);
  });
  router.get('/metrics', admitted, async (_req, res) => {
    const text = await metrics.text();
    res.type(metrics.contentType).send(text);
  });
}
