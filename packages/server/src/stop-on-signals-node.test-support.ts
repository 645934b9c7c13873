/**
 * A Herald node in a process of its own that stops as an app with an OpenTelemetry SDK does: it listens with
 * `handleSignals: false`, and `stopOnSignals` closes Herald, then shuts the SDK down, which exports the spans its batch
 * still holds (the console exporter prints them on stdout). It publishes one `order.created` first, whose spans wait
 * there, and prints `{"baseUrl":...}` as one line once it listens; its logs, pino's JSON lines, go to stdout too.
 * `STOP_DELAY` (ms) delays the SDK's shutdown, for a stop that takes a while; `STOP_FAILS` makes it fail.
 */
import { eventTypeFromJsonSchema } from '@herald/core';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter } from '@opentelemetry/sdk-trace-base';
import { createHerald } from './create-herald.js';
import { stopOnSignals } from './stop-on-signals.js';

// Sent only when shut down: never on a schedule during a test.
const sdk = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(new ConsoleSpanExporter(), { scheduledDelayMillis: 3_600_000 })] });
trace.setGlobalTracerProvider(sdk);

const herald = createHerald({ eventTypes: [eventTypeFromJsonSchema('order.created', { type: 'object' })] });
const { url } = await herald.listen({ port: 0, host: '127.0.0.1', handleSignals: false });
await herald.publish({ type: 'order.created', data: { orderId: 'o-1' } });
stopOnSignals(async () => {
  await herald.close();
  if (process.env.STOP_DELAY) await new Promise((resolve) => setTimeout(resolve, Number(process.env.STOP_DELAY)));
  if (process.env.STOP_FAILS) throw new Error('the exporter is unreachable');
  await sdk.shutdown();
}, herald.logger);
process.stdout.write(`${JSON.stringify({ baseUrl: url })}\n`);
