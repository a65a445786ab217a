import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import type { Headers } from '../handler.js';
import { AccessLog } from './access-log.js';
import { Registry } from './metrics.js';
import { noopObserver } from './observer.js';
import { createSidecarObserver, createSidecarTelemetry } from './sidecar-observer.js';
import { ProcessorSink } from './span-export.js';
import { Tracing } from './tracing.js';

function setup(opts: { sampleRatio?: number } = {}) {
  const registry = new Registry();
  const exporter = new InMemorySpanExporter();
  const tracing = new Tracing({ sink: new ProcessorSink(exporter, { serviceName: 'orders', simple: true }), sampleRatio: opts.sampleRatio ?? 1, random: () => 0.5 });
  const lines: Array<Record<string, unknown>> = [];
  const accessLog = new AccessLog({ destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) }, random: () => 0.5 });
  const observer = createSidecarObserver({ registry, tracing, accessLog, service: 'orders' });
  return { registry, exporter, tracing, accessLog, lines, observer };
}

describe('createSidecarObserver', () => {
  it('feeds one request to metrics, the access log and a trace with the same trace id', async () => {
    const { registry, exporter, tracing, accessLog, lines, observer } = setup();
    const req = observer.requestStarted({ direction: 'outbound', method: 'GET', authority: 'users', path: '/u/1?x=y', headers: {}, startedAt: performance.now() });
    const upstream: Headers = {};
    req.attemptStarted(1, '127.0.0.1:9101', upstream).end(200, undefined);
    req.end({ status: 200, info: { service: 'users', route: 'users', backend: 'users', endpoint: '127.0.0.1:9101', attempts: 1, retries: 0 }, durationMs: 4, bytesIn: 0, bytesOut: 9 });
    await tracing.forceFlush(); // (close() would also reset the in-memory exporter)
    await accessLog.close(); // lines are batched; close() writes them out
    expect(await registry.metrics()).toMatch(/meshlet_requests_total\{direction="outbound",service="users",route="users",backend="users",status_class="2xx",error_code=""\} 1/);
    expect(lines).toHaveLength(1);
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(2);
    expect(lines[0]).toMatchObject({ path: '/u/1', status: 200, endpoint: '127.0.0.1:9101', traceId: spans[0]!.spanContext().traceId });
    expect(upstream.traceparent).toContain(spans[0]!.spanContext().spanId);
  });

  it('labels inbound requests with the local service when the data path set none', async () => {
    const { registry, observer } = setup();
    observer.requestStarted({ direction: 'inbound', method: 'POST', authority: 'orders', path: '/', headers: {}, startedAt: performance.now() }).end({ status: 201, info: { attempts: 1, retries: 0 }, durationMs: 1, bytesIn: 5, bytesOut: 0 });
    expect(await registry.metrics()).toMatch(/meshlet_requests_total\{direction="inbound",service="orders",route="",backend="",status_class="2xx",error_code=""\} 1/);
  });

  it('applies the telemetry settings of a new snapshot', async () => {
    const { exporter, lines, observer } = setup({ sampleRatio: 1 });
    observer.telemetryConfigured({ accessLog: { enabled: true, sampleRatio: 0.1, minStatus: 0 }, tracingSampleRatio: 0.1 });
    const req = observer.requestStarted({ direction: 'outbound', method: 'GET', authority: 'users', path: '/', headers: {}, startedAt: performance.now() });
    req.end({ status: 200, info: { service: 'users', attempts: 1, retries: 0 }, durationMs: 1, bytesIn: 0, bytesOut: 0 });
    const failed = observer.requestStarted({ direction: 'outbound', method: 'GET', authority: 'users', path: '/', headers: {}, startedAt: performance.now() });
    failed.end({ status: 503, info: { service: 'users', attempts: 1, retries: 0, errorCode: 'NO_HEALTHY_UPSTREAM' }, durationMs: 1, bytesIn: 0, bytesOut: 0 });
    await observer.close();
    // random() is 0.5: above both ratios, so nothing is sampled but the error line.
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(lines.map((l) => l.errorCode)).toEqual(['NO_HEALTHY_UPSTREAM']);
  });

  it('logs the caller trace id when tracing is off', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const accessLog = new AccessLog({ destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
    const observer = createSidecarObserver({ registry: new Registry(), accessLog, service: 'orders' });
    const headers: Headers = { traceparent: `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01` };
    const req = observer.requestStarted({ direction: 'inbound', method: 'GET', authority: 'orders', path: '/', headers, startedAt: performance.now() });
    const upstream: Headers = {};
    req.attemptStarted(1, '127.0.0.1:1', upstream).end(200, undefined);
    req.end({ status: 200, info: { attempts: 1, retries: 0 }, durationMs: 1, bytesIn: 0, bytesOut: 0 });
    await accessLog.close();
    expect(lines[0]!.traceId).toBe('c'.repeat(32));
    expect(upstream).toEqual({}); // tracing off: the data path forwards the caller's headers untouched
  });

  it('logs only a well-formed trace id: the access log writes it unescaped', async () => {
    const bad = [`00-${'c'.repeat(31)}"-${'d'.repeat(16)}-01`, `00-${'C'.repeat(32)}-${'d'.repeat(16)}-01`, `00-${'0'.repeat(32)}-${'d'.repeat(16)}-01`, `00-${'c'.repeat(30)}\n,"x":1}-01`, 'garbage'];
    for (const tracing of [undefined, new Tracing({ sink: new ProcessorSink(new InMemorySpanExporter(), { serviceName: 'orders', simple: true }), sampleRatio: 0 })]) {
      const raw: string[] = [];
      const accessLog = new AccessLog({ destination: { write: (s: string) => void raw.push(...s.split('\n').filter(Boolean)) } });
      const observer = createSidecarObserver({ registry: new Registry(), tracing, accessLog, service: 'orders' });
      for (const traceparent of bad) {
        const req = observer.requestStarted({ direction: 'inbound', method: 'GET', authority: 'orders', path: '/', headers: { traceparent }, startedAt: performance.now() });
        req.end({ status: 200, info: { attempts: 1, retries: 0 }, durationMs: 1, bytesIn: 0, bytesOut: 0 });
      }
      await accessLog.close();
      expect(raw).toHaveLength(bad.length);
      const ids = raw.map((l) => (JSON.parse(l) as { traceId?: string }).traceId);
      // Tracing off: no id rather than the caller's malformed one; on: a new trace's own id.
      if (tracing === undefined) expect(ids).toEqual(bad.map(() => undefined));
      else for (const id of ids) expect(id).toMatch(/^[\da-f]{32}$/);
    }
  });

  it('does not let an exporter that never answers hold close() forever', async () => {
    // A collector that accepts the connection and never replies, as a hung one would.
    const hung = { export: () => {}, shutdown: () => new Promise<void>(() => {}), forceFlush: () => new Promise<void>(() => {}) };
    const tracing = new Tracing({ sink: new ProcessorSink(hung, { serviceName: 'orders', simple: true }), sampleRatio: 1 });
    const observer = createSidecarObserver({ registry: new Registry(), tracing, service: 'orders' });
    const req = observer.requestStarted({ direction: 'inbound', method: 'GET', authority: 'orders', path: '/', headers: {}, startedAt: performance.now() });
    req.end({ status: 200, info: { attempts: 1, retries: 0 }, durationMs: 1, bytesIn: 0, bytesOut: 0 });
    await expect(observer.close()).resolves.toBeUndefined();
  });

  it('has the same members as noopObserver', async () => {
    const observer = await createSidecarTelemetry({ service: 'orders', accessLog: false, processMetrics: false, env: {} });
    const members = Object.keys(noopObserver).sort();
    for (const m of members) expect(typeof (observer as unknown as Record<string, unknown>)[m]).toBe('function');
  });
});
