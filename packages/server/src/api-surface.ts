import type { EventCatalog, RouteDefinition, Transport } from '@herald/core';
import type { z } from 'zod';

/** A route the server mounted, and the transport that added it (none for the built-in ones). */
export interface DocumentedRoute {
  definition: RouteDefinition;
  transport?: string;
}

/** A GET the server answers itself, without authentication: health, metrics, the documents. */
export interface PlainRoute {
  path: string;
  summary: string;
  /** @default 'application/json' */
  mediaType?: string;
  /** The JSON body it answers with. */
  body?: z.ZodType;
  tag: string;
}

/** Everything a Herald serves, from which the API documents are generated. */
export interface ApiSurface {
  routes: readonly DocumentedRoute[];
  /** WebSocket upgrade paths and the transports that own them. */
  upgrades: readonly { path: string; transport: string }[];
  plainRoutes: readonly PlainRoute[];
  catalog: EventCatalog;
  /** The mounted transports, by name. */
  transports: ReadonlyMap<string, Transport>;
}
