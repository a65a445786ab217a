// The OTLP export runs in a worker thread (core/telemetry/worker-span-sink.ts): the main thread
// hands it span records, and the worker makes them spans for OpenTelemetry's batch processor,
// serializer and HTTP delegate.
// A real process built from dist/ records one sampled request and shuts tracing down; a real OTLP/HTTP
// receiver on loopback decodes what arrives. Shutdown must flush what is queued and the worker must not
// keep the process alive.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startOtlpReceiver, SPAN_KIND, type OtlpReceiver } from './harness/otlp-receiver.js';
import { ROOT } from './harness/process.js';

let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

/** Runs one traced request in a new process; resolves with its exit code (it must exit by itself). */
function tracedRequest(route: string, env: Record<string, string>): Promise<number | null> {
  const tracing = pathToFileURL(path.join(ROOT, 'dist/core/telemetry/tracing.js')).href;
  const script = `
    import { Tracing } from ${JSON.stringify(tracing)};
    const t = Tracing.fromEnv({ service: 'worker-test', sampleRatio: 1 });
    const r = t.start({ direction: 'outbound', method: 'GET', authority: 'users:8080', path: '/api', headers: {}, startedAt: performance.now() });
    const headers = {};
    r.attemptStarted(1, '127.0.0.1:9101', headers).end(200, undefined);
    r.end({ status: 200, info: { service: 'users', route: ${JSON.stringify(route)}, attempts: 1, retries: 0 }, durationMs: 1, bytesIn: 0, bytesOut: 0 });
    await t.shutdown();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the traced process did not exit within 15 s (the export worker held it?)'));
    }, 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

it('exports a request span and its attempt span from the worker, protobuf by default, flushed on shutdown', async () => {
  const before = BigInt(Date.now() - 1) * 1_000_000n;
  expect(await tracedRequest('worker-proto', {})).toBe(0);
  const after = BigInt(Date.now() + 1) * 1_000_000n;
  const spans = receiver.spans.filter((s) => s.name === 'GET worker-proto' || s.attributes['meshlet.endpoint'] === '127.0.0.1:9101');
  const root = spans.find((s) => s.name === 'GET worker-proto');
  expect(root).toMatchObject({ kind: SPAN_KIND.CLIENT, service: 'worker-test', encoding: 'protobuf', parentSpanId: '' });
  const attempt = spans.find((s) => s.parentSpanId === root!.spanId);
  expect(attempt).toMatchObject({ kind: SPAN_KIND.CLIENT, traceId: root!.traceId, encoding: 'protobuf' });
  expect(attempt!.attributes['meshlet.attempt']).toBe(1);
  // Times are the recording thread's clock, not the worker's: wall-clock times of this run, nested.
  expect(root!.startNs >= before && root!.endNs <= after, `${root!.startNs}..${root!.endNs} outside ${before}..${after}`).toBe(true);
  expect(attempt!.startNs >= root!.startNs && attempt!.endNs <= root!.endNs && attempt!.startNs <= attempt!.endNs).toBe(true);
});

it('sends OTLP/JSON when OTEL_EXPORTER_OTLP_PROTOCOL=http/json, with the headers OTEL_EXPORTER_OTLP_HEADERS names', async () => {
  const before = receiver.headers.length;
  expect(await tracedRequest('worker-json', { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=meshlet' })).toBe(0);
  const root = receiver.spans.find((s) => s.name === 'GET worker-json');
  expect(root).toMatchObject({ encoding: 'json', service: 'worker-test' });
  expect(receiver.headers.slice(before).map((h) => h['content-type'])).toEqual(['application/json']);
  expect(receiver.headers.at(-1)?.['x-tenant']).toBe('meshlet');
});

it('forceFlush() resolves only once the worker has exported what was recorded before it', async () => {
  const tracing = pathToFileURL(path.join(ROOT, 'dist/core/telemetry/tracing.js')).href;
  // The batch processor's own delay (5 s by default) would hold the span; forceFlush must not wait for it.
  const script = `
    import { Tracing } from ${JSON.stringify(tracing)};
    const t = Tracing.fromEnv({ service: 'flush-test', sampleRatio: 1 });
    const r = t.start({ direction: 'inbound', method: 'GET', authority: 'orders', path: '/flush', headers: {}, startedAt: performance.now() });
    r.attemptStarted(1, '127.0.0.1:9102', {}).end(200, undefined);
    r.end({ status: 200, info: { service: 'orders', route: 'worker-flush', attempts: 1, retries: 0 }, durationMs: 1, bytesIn: 0, bytesOut: 0 });
    await t.forceFlush();
    process.stdout.write('flushed\\n');
    process.stdin.once('data', () => void t.shutdown());`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint }, stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no "flushed" within 10 s')), 10_000);
      child.stdout.once('data', (d: Buffer) => {
        clearTimeout(timer);
        resolve(d.toString());
      });
      child.once('exit', (code) => reject(new Error(`exited (${code}) before flushing`)));
    });
    expect(line).toBe('flushed\n');
    // No waiting here: the export had been answered, so the receiver holds both spans already.
    expect(receiver.spans.filter((s) => s.service === 'flush-test').map((s) => s.name).sort()).toEqual(['GET', 'GET worker-flush']);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdin.end('stop\n');
    expect(await exited).toBe(0);
  } finally {
    child.kill('SIGKILL');
  }
});
