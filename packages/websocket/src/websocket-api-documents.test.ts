import { startTestApp, type TestApp } from '@herald/testkit';
import { expect, it, onTestFinished } from 'vitest';
import { websocket } from './websocket-transport.js';

async function asyncApi(app: TestApp) {
  return (await (await fetch(`${app.baseUrl}/asyncapi.json`)).json()) as any;
}

it('/asyncapi.json describes herald.v1 at the transport’s path: the frames clients send, received, and those it sends', async () => {
  const app = await startTestApp([websocket({ path: '/v1/socket', authTimeout: 2_500 })]);
  onTestFinished(() => app.close());
  const document = await asyncApi(app);
  const { port } = new URL(app.baseUrl);
  expect(document.servers.websocket).toMatchObject({ host: `127.0.0.1:${port}`, protocol: 'ws', description: expect.stringMatching(/herald\.v1/) });
  const channel = document.channels.websocket;
  expect(channel).toMatchObject({ address: '/v1/socket', title: 'WebSocket (herald.v1)', description: expect.stringMatching(/within 2\.5 s/) });
  const frames = (action: string) => document.operations[`websocket.${action}`].messages.map(({ $ref }: { $ref: string }) => document.components.messages[$ref.split('/').at(-1) as string].name);
  expect(frames('receive')).toEqual(['auth', 'subscribe', 'unsubscribe', 'ack', 'ping', 'pong']);
  // Events arrive inside `event` frames only: no message of their own.
  expect(frames('send')).toEqual(['ready', 'subscribed', 'event', 'reset', 'error', 'ping', 'pong']);
  expect(document.components.messages['websocket.client.subscribe'].payload.properties.types.maxItems).toBe(100);
});
