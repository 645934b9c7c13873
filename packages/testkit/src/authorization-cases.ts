import assert from 'node:assert/strict';
import type { HeraldEvent } from '@herald/core';
import { idsOf, publish, type TestApp, withTestApp } from './test-app.js';
import { type ClientConnection, type ConnectRequest, ConnectionRefusedError, type Refusal, type SuiteCase, type TransportHarness } from './transport-harness.js';
import { linger, waitFor } from './wait-for.js';

/** How long the server may take to end a connection it must end. */
const endTimeout = 5_000;

/** A stream token issued with `key`. */
async function streamToken(app: TestApp, key: string, body: Record<string, unknown> = {}): Promise<string> {
  const { status, body: answer } = await app.api('POST', '/v1/stream-tokens', body, key);
  assert.equal(status, 201, `issuing a stream token: ${JSON.stringify(answer)}`);
  return answer.token as string;
}

function connect(harness: TransportHarness, app: TestApp, request: ConnectRequest): Promise<ClientConnection> {
  if (!harness.connect) throw new Error('this case needs harness.connect');
  return harness.connect(app, request);
}

/** The connection, or why the transport refused it. */
async function attempt(opening: Promise<ClientConnection>): Promise<ClientConnection | Refusal> {
  try {
    return await opening;
  } catch (error) {
    if (error instanceof ConnectionRefusedError) return error.reason;
    throw error;
  }
}

/** How the transport answered a connection: accepted (then closed again), or refused and why. */
async function answerTo(opening: Promise<ClientConnection>): Promise<Refusal | 'accepted'> {
  const answer = await attempt(opening);
  if (typeof answer === 'string') return answer;
  await answer.close();
  return 'accepted';
}

async function endedInTime(connection: ClientConnection, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} was not ended within ${endTimeout} ms`)), endTimeout);
  });
  try {
    await Promise.race([connection.ended, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `receiver` has `event`, then a little longer, and checks it holds exactly `expected`. */
async function receivedExactly(receiver: { events: readonly HeraldEvent[] }, expected: readonly HeraldEvent[], label: string): Promise<void> {
  const last = expected.at(-1);
  if (last) await waitFor(() => receiver.events.some((event) => event.id === last.id), `${label}: the last event`);
  await linger();
  assert.deepEqual(idsOf(receiver.events), idsOf(expected), label);
}

/**
 * The suite's authorization cases: what each credential may reach and receive. Those that need
 * client connections apply to streaming transports only.
 */
export function authorizationCases(harness: TransportHarness): SuiteCase[] {
  return [
    {
      name: "keeps another consumer's durable subscription out of reach of the REST API (404)",
      run: () =>
        withTestApp(harness, async ({ app, receive }) => {
          const alpha = await receive('alpha', ['order.*']);
          const path = `/v1/subscriptions/${alpha.subscriptionId}`;
          const [alphaKey, betaKey] = [await app.consumerKey('alpha'), await app.consumerKey('beta')];
          for (const [method, body] of [['GET'], ['PATCH', { status: 'paused' }], ['PATCH', { types: ['**'] }], ['DELETE']] as const) {
            const answer = await app.api(method, path, body, betaKey);
            assert.equal(answer.status, 404, `${method} ${JSON.stringify(body ?? '')} of another consumer's subscription`);
            assert.equal(answer.body?.type, 'urn:herald:problem:not-found');
          }
          for (const route of harness.subscriptionRoutes ?? []) {
            const routePath = route.path.replace(':id', alpha.subscriptionId);
            const stranger = await app.api(route.method, routePath, route.body, betaKey);
            assert.equal(stranger.status, 404, `${route.method} ${route.path} for another consumer`);
            const owner = await app.api(route.method, routePath, route.body, alphaKey);
            assert.notEqual(owner.status, 404, `${route.method} ${route.path} for the subscription's own consumer`);
          }
          const after = (await app.api('GET', path)).body;
          assert.deepEqual([after.status, after.types], ['active', ['order.*']], 'the subscription after the other consumer tried');
          const event = await publish(app, 'order.created', 1);
          await waitFor(() => alpha.events.some((received) => received.id === event.id), 'its own consumer to go on receiving');
        }),
    },
    {
      name: "does not let another consumer attach to a durable subscription, nor tell it apart from one that does not exist",
      needs: ['connect'],
      run: () =>
        withTestApp(harness, async ({ app, receive }) => {
          const alpha = await receive('alpha', ['order.*']);
          const betaKey = await app.consumerKey('beta');
          for (const credential of [betaKey, await streamToken(app, betaKey)]) {
            const answer = await answerTo(connect(harness, app, { credential, subscription: alpha.subscriptionId }));
            assert.equal(answer, 'not-found', "attaching to another consumer's subscription");
          }
          const missing = await answerTo(connect(harness, app, { credential: betaKey, subscription: 'sub_01aaaaaaaaaaaaaaaaaaaaaaaa' }));
          assert.equal(missing, 'not-found', 'attaching to a subscription that does not exist');
        }),
    },
    {
      name: 'lets a stream token neither subscribe nor change a subscription (403)',
      run: () =>
        withTestApp(harness, async ({ app, receive }) => {
          const alpha = await receive('alpha', ['order.*']);
          const token = await streamToken(app, await app.consumerKey('alpha'), { types: ['order.*'] });
          const path = `/v1/subscriptions/${alpha.subscriptionId}`;
          const { transport } = (await app.api('GET', path)).body;
          const requests = [
            { method: 'POST', path: '/v1/subscriptions', body: { transport, types: ['**'], config: {} } },
            { method: 'PATCH', path, body: { types: ['**'] } },
            { method: 'DELETE', path },
            ...(harness.subscriptionRoutes ?? []).map((route) => ({ ...route, path: route.path.replace(':id', alpha.subscriptionId) })),
          ];
          for (const { method, path: target, body } of requests) {
            const answer = await app.api(method, target, body, token);
            assert.equal(answer.status, 403, `${method} ${target} with a stream token`);
            assert.equal(answer.body?.type, 'urn:herald:problem:stream-token-forbidden');
          }
          const after = (await app.api('GET', path)).body;
          assert.deepEqual([after.status, after.types], ['active', ['order.*']], 'the subscription after the token tried');
        }),
    },
    {
      name: "keeps a stream token's connections within its types",
      needs: ['connect'],
      run: () =>
        withTestApp(harness, async ({ app, receive, track }) => {
          const alphaKey = await app.consumerKey('alpha');
          const wide = await receive('alpha', ['**']);
          const token = await streamToken(app, alphaKey, { types: ['order.*'] });
          for (const types of [['invoice.*'], ['**'], ['order.**'], ['order.*', 'invoice.paid']]) {
            assert.equal(await answerTo(connect(harness, app, { credential: token, types })), 'forbidden', `a stream of ${types} with a token for order.*`);
          }
          const attached = await answerTo(connect(harness, app, { credential: token, subscription: wide.subscriptionId }));
          assert.equal(attached, 'forbidden', 'attaching a token for order.* to a subscription to **');

          const scoped = track(await connect(harness, app, { credential: token, types: ['order.*'] }));
          const published = [await publish(app, 'order.created', 1), await publish(app, 'invoice.paid', 2), await publish(app, 'order.shipped', 3)];
          await receivedExactly(scoped, published.filter((event) => event.type.startsWith('order.')), 'what the token for order.* received');
        }),
    },
    {
      name: 'ends the connections of a revoked key and of the stream tokens it issued, and lets neither back in',
      needs: ['connect'],
      run: () =>
        withTestApp(harness, async ({ app, track }) => {
          const made = await app.api('POST', '/v1/keys', { role: 'consumer', consumer: 'alpha' });
          assert.equal(made.status, 201);
          const revoked: string = made.body.key;
          const issued = await streamToken(app, revoked);
          const kept = await app.consumerKey('alpha');
          const types = ['order.*'];
          const [byKey, byToken, byOtherKey] = [
            track(await connect(harness, app, { credential: revoked, types })),
            track(await connect(harness, app, { credential: issued, types })),
            track(await connect(harness, app, { credential: kept, types })),
          ];
          assert.equal((await app.api('DELETE', `/v1/keys/${made.body.id}`)).status, 204);
          await endedInTime(byKey, 'the connection of the revoked key');
          await endedInTime(byToken, 'the connection of a token the revoked key issued');
          const event = await publish(app, 'order.created', 1);
          await receivedExactly(byOtherKey, [event], "what another key of the same consumer received");
          assert.deepEqual([byKey.events.length, byToken.events.length], [0, 0], 'events received after the revocation');
          for (const credential of [revoked, issued]) {
            assert.equal(await answerTo(connect(harness, app, { credential, types })), 'unauthorized', 'connecting with a revoked credential');
          }
        }),
    },
    {
      name: 'gives a paused subscription nothing on a connection opened while it is paused, until it is resumed',
      needs: ['connect'],
      run: () =>
        withTestApp(harness, async ({ app, receive, track }) => {
          const key = await app.consumerKey('alpha');
          const subscription = await receive('alpha', ['order.*']);
          const path = `/v1/subscriptions/${subscription.subscriptionId}`;
          assert.equal((await app.api('PATCH', path, { status: 'paused' }, key)).status, 200);
          const whilePaused = [await publish(app, 'order.created', 1)];
          const attached = track(await connect(harness, app, { credential: key, subscription: subscription.subscriptionId }));
          whilePaused.push(await publish(app, 'order.created', 2));
          const control = track(await connect(harness, app, { credential: key, types: ['order.*'] }));
          const controlEvent = await publish(app, 'order.created', 3);
          await receivedExactly(control, [controlEvent], 'an ad hoc stream of the same consumer');
          assert.deepEqual([attached.events.length, subscription.events.length], [0, 0], 'events the paused subscription received');

          assert.equal((await app.api('PATCH', path, { status: 'active' }, key)).status, 200);
          const resumed = await publish(app, 'order.shipped', 4);
          await waitFor(() => attached.events.some((event) => event.id === resumed.id), 'the connection opened while paused to receive once resumed');
          assert.ok(!attached.events.some((event) => whilePaused.some((paused) => paused.id === event.id)), 'an event published while paused arrived');
        }),
    },
    {
      name: 'gives a stream token issued without a consumer only the events addressed to everyone',
      needs: ['connect'],
      run: () =>
        withTestApp(harness, async ({ app, receive, track }) => {
          const alpha = await receive('alpha', ['order.*']);
          const token = await streamToken(app, app.adminKey);
          assert.equal(await answerTo(connect(harness, app, { credential: token, subscription: alpha.subscriptionId })), 'not-found', "attaching to a consumer's subscription");
          const stream = track(await connect(harness, app, { credential: token, types: ['order.*'] }));
          const published = [
            await publish(app, 'order.created', 1),
            await publish(app, 'order.created', 2, 'alpha'),
            await publish(app, 'order.shipped', 3, 'beta'),
            await publish(app, 'order.shipped', 4),
          ];
          await receivedExactly(stream, published.filter((event) => event.consumer === undefined), 'what the token without a consumer received');
        }),
    },
    {
      name: "counts its connections against the server's limit per key, and frees a slot when one closes",
      needs: ['connect'],
      run: () =>
        withTestApp(
          harness,
          async ({ app, track }) => {
            const [key, otherKey] = [await app.consumerKey('alpha'), await app.consumerKey('beta')];
            const types = ['order.*'];
            const first = track(await connect(harness, app, { credential: key, types }));
            track(await connect(harness, app, { credential: key, types }));
            const third = () => answerTo(connect(harness, app, { credential: key, types }));
            if (harness.pull) {
              // A pull transport's client holds its slot while a request waits, and gives it back between two: a third may come in such a gap.
              await waitFor(async () => (await third()) === 'too-many-connections', 'a third connection with a limit of 2 to be refused');
            } else {
              assert.equal(await third(), 'too-many-connections', 'a third connection with a limit of 2');
            }
            assert.equal(await answerTo(connect(harness, app, { credential: otherKey, types })), 'accepted', 'a connection with another key');
            await first.close();
            // The server sees the close a moment later.
            const last: { answer?: ClientConnection | Refusal } = {};
            await waitFor(async () => (last.answer = await attempt(connect(harness, app, { credential: key, types }))) !== 'too-many-connections', 'a slot to free');
            if (typeof last.answer !== 'object') assert.fail(`the connection once a slot is free: ${last.answer}`);
            track(last.answer);
          },
          { maxConnectionsPerKey: 2 },
        ),
    },
  ];
}
