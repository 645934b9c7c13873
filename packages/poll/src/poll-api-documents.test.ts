import { testEventTypes } from '@herald/testkit';
import { expect, it, onTestFinished } from 'vitest';
import { startPollApp } from './poll-app.test-support.js';

it('/asyncapi.json describes the polls at the transport’s path: an HTTP server of Herald’s own, an event per catalog type', async () => {
  const app = await startPollApp({ path: '/v1/long-poll', defaultWait: 10, maxWait: 20 });
  onTestFinished(() => app.close());
  const document = (await (await fetch(`${app.baseUrl}/asyncapi.json`)).json()) as any;
  expect(document.servers.poll).toMatchObject({ protocol: 'http', host: `127.0.0.1:${new URL(app.baseUrl).port}` });
  expect(document.channels.poll).toMatchObject({
    address: '/v1/long-poll',
    title: 'Long polling',
    description: expect.stringContaining('within `wait` seconds (10 by default, at most 20)'),
  });
  const sent = document.operations['poll.send'].messages.map(({ $ref }: { $ref: string }) => $ref.split('/').at(-1));
  expect(sent).toEqual(testEventTypes.map((type) => `poll.event.${type.name}`).sort());
});
