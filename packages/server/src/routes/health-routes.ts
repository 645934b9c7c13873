import { type Store, UnavailableError } from '@herald/core';
import type { Router } from 'express';
import { sendProblem } from '../problem.js';

/**
 * `/healthz`: the process answers. `/readyz`: the store answers, takes writes (while it refuses them,
 * `ping` fails with why), and the server is not stopping.
 */
export function mountHealthRoutes(router: Router, store: Store, isStopping: () => boolean): void {
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const unready = (detail: string) =>
      sendProblem(res, { type: 'urn:herald:problem:not-ready', title: 'Not ready', status: 503, detail });
    if (isStopping()) return unready('The server is stopping');
    try {
      await store.ping();
      res.json({ status: 'ready' });
    } catch (error) {
      unready(error instanceof UnavailableError ? error.message : 'The store does not answer');
    }
  });
}
