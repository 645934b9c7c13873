import { startTestApp, testEventTypes } from '@herald/testkit';
import { expect, it, onTestFinished } from 'vitest';
import { sse } from './sse-transport.js';

it('/asyncapi.json describes the stream at the transport’s path: an event per catalog type, and the ready, reset and end frames', async () => {
  const app = await startTestApp([sse({ path: '/v1/events-stream' })]);
  onTestFinished(() => app.close());
  const document = (await (await fetch(`${app.baseUrl}/asyncapi.json`)).json()) as any;
  expect(document.servers.sse).toMatchObject({ protocol: 'http', host: `127.0.0.1:${new URL(app.baseUrl).port}` });
  const channel = document.channels.sse;
  expect(channel).toMatchObject({ address: '/v1/events-stream', title: 'Server-Sent Events', description: expect.stringMatching(/Last-Event-ID/) });
  const sent = document.operations['sse.send'].messages.map(({ $ref }: { $ref: string }) => $ref.split('/').at(-1));
  expect(sent).toEqual([...testEventTypes.map((type) => `sse.event.${type.name}`).sort(), 'sse.server.ready', 'sse.server.reset', 'sse.server.end']);
  expect(document.components.messages['sse.server.end'].payload.properties.reason.enum).toContain('revoked');
  expect(document.operations['sse.receive']).toBeUndefined();
});
