import type { HeraldEvent, Transport } from '@herald/core';
import type { HeraldOptions } from '@herald/server';
import type { TestApp } from './test-app.js';

/** One consumer's endpoint on a durable subscription, as the transport under test delivers to it. */
export interface Receiver {
  subscriptionId: string;
  /** Every event received so far, in arrival order. */
  readonly events: readonly HeraldEvent[];
  /**
   * Push transports: makes the destination refuse what it is sent (an HTTP 500, a missing directory, a
   * closed queue), or take it again. What it refuses is not in `events`.
   */
  fail?(failing: boolean): void | Promise<void>;
  close(): Promise<void>;
}

/** What a client of a streaming transport asks for when it connects: an ad hoc stream, or a durable subscription. */
export type ConnectRequest = {
  /** The API key or stream token the client authenticates with. */
  credential: string;
} & ({ types: string[]; subscription?: undefined } | { subscription: string; types?: undefined });

/** A connection a client of a streaming transport holds open (a WebSocket, an SSE stream). */
export interface ClientConnection {
  /** Every event received so far, in arrival order. */
  readonly events: readonly HeraldEvent[];
  /** Resolves once the server has ended the connection; it receives nothing more. */
  readonly ended: Promise<void>;
  close(): Promise<void>;
}

/** Why a transport refused a connection, as the harness reads its answer (an HTTP status, a close code, an error message). */
export type Refusal = 'unauthorized' | 'forbidden' | 'not-found' | 'too-many-connections';

/** What {@link TransportHarness.connect} throws when the transport refuses the connection. */
export class ConnectionRefusedError extends Error {
  override readonly name = 'ConnectionRefusedError';
  constructor(
    readonly reason: Refusal,
    detail: string,
  ) {
    super(`the connection was refused (${reason}): ${detail}`);
  }
}

/** A route the transport adds under a durable subscription, with a request its consumer may make. */
export interface SubscriptionRoute {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** With `:id` for the subscription's id, e.g. `/v1/subscriptions/:id/deliveries`. */
  path: string;
  body?: unknown;
}

/**
 * What the suite needs to know about a transport. Beyond `transport` and `receive`, which every
 * transport has, a harness says what else its transport offers; the cases that need what it does not
 * offer do not apply to it (the suite's title lists them).
 */
export interface TransportHarness {
  /** A new instance of the transport under test. */
  transport(): Transport;
  /** More createHerald options, e.g. `env` allowing private webhook targets. */
  options?: Partial<HeraldOptions>;
  /**
   * Creates a durable subscription of `consumer` to `types` on the transport (through the REST API,
   * with that consumer's key) and starts receiving on it.
   */
  receive(app: TestApp, input: { consumer: string; types: string[] }): Promise<Receiver>;
  /**
   * Transports whose clients hold connections (WebSocket, SSE): opens one as a client would, and
   * resolves once the transport has accepted it and delivers to it. Rejects with
   * {@link ConnectionRefusedError} when the transport refuses it.
   */
  connect?(app: TestApp, request: ConnectRequest): Promise<ClientConnection>;
  /** Routes the transport adds under a durable subscription (e.g. a webhook's deliveries), which only its consumer may reach. */
  subscriptionRoutes?: readonly SubscriptionRoute[];
  /** Push transports (webhook, a queue): what the cases of durable delivery need. Its receivers must offer `fail`. */
  push?: PushHarness;
  /**
   * Pull transports (request/response, such as long polling): how a consumer asks for events. The suite
   * then checks how the transport stops with its own case, in place of the one for transports that send.
   */
  pull?: PullHarness;
}

/** One request of a pull transport's consumer: the events of a durable subscription after a position. */
export interface PullRequest {
  /** The API key or stream token the consumer authenticates with. */
  credential: string;
  subscriptionId: string;
  /** The `next` of the previous answer, which acknowledges everything up to it; absent on the first request. */
  after?: string;
  /** How long the server may wait for a first event before it answers with none, in ms. */
  wait: number;
}

/** A pull transport's answer: the events, in `seq` order, and where the next request goes on from. */
export interface PullAnswer {
  events: HeraldEvent[];
  next: string;
}

/** How the suite makes the requests of a pull transport's consumer (`pullingReceiver` turns it into a `Receiver`). */
export interface PullHarness {
  /**
   * Makes one request as a consumer would, and resolves with the whole answer. Rejects when the request
   * fails: refused, cut, or with no server to answer it.
   */
  pull(app: TestApp, request: PullRequest): Promise<PullAnswer>;
}

/**
 * How the suite runs a push transport in a process of its own, which it kills with SIGKILL and starts
 * again on the same database.
 */
export interface PushHarness {
  /**
   * The path or file URL of a module whose export `transport()` makes the transport as the harness's
   * `transport()` does, but with a short lease (a few seconds): what the killed process held comes
   * back when its lease ends.
   */
  module: string | URL;
  /**
   * Node's arguments for that process. @default ['--conditions=herald-source', '--import', 'tsx'] (tsx resolved from
   * the module: a devDependency of its package)
   */
  nodeArguments?: readonly string[];
  /** How long a restarted process may take to deliver what the killed one left, in ms (its lease, and then some). @default 60000 */
  recoveryTime?: number;
}

/** What a case may need of a harness beyond `transport` and `receive`. */
export type HarnessCapability = 'connect' | 'push' | 'pull';

/** A named check of the suite; `run` rejects when the transport fails it. */
export interface SuiteCase {
  name: string;
  /** What the case needs of the harness; it does not apply to a transport without it. @default nothing */
  needs?: readonly HarnessCapability[];
  /** How long the case may take, in ms: longer than the waits it bounds itself, so that they say what did not happen. @default 60000 */
  timeout?: number;
  run(): Promise<void>;
}
