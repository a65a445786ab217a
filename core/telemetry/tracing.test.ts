import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { isMeshError } from '../errors.js';
import type { Headers, RequestInfo } from '../handler.js';
import type { RequestStart } from './observer.js';
import { ProcessorSink } from './span-export.js';
import { hasZeroId, newSpanId } from './span-record.js';
import { extractParent, newRootTraceparent, Tracing, tracingEnv } from './tracing.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

function start(headers: Headers, direction: RequestStart['direction'] = 'outbound'): RequestStart {
  return { direction, method: 'GET', authority: 'users:8080', path: '/api/users/7?token=secret', headers, startedAt: performance.now() };
}

function info(p: Partial<RequestInfo> = {}): RequestInfo {
  return { service: 'users', route: 'users-default', backend: 'users', endpoint: '127.0.0.1:9101', attempts: 1, retries: 0, ...p };
}

// Records go through the same conversion and SDK processor as in the export worker, in process.
function tracing(opts: Partial<ConstructorParameters<typeof Tracing>[0]> = {}) {
  const exporter = new InMemorySpanExporter();
  const t = new Tracing({ sink: new ProcessorSink(exporter, { serviceName: 'orders', simple: true }), ...opts });
  return { t, exporter };
}

describe('newRootTraceparent', () => {
  it('gives well-formed, distinct, unsampled contexts with non-zero ids across several pool refills', () => {
    const seen = new Set<string>();
    // A pool holds 170 contexts: 1,000 take it through several refills.
    for (let i = 0; i < 1_000; i++) {
      const tp = newRootTraceparent();
      const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(tp);
      expect(m, tp).not.toBeNull();
      expect(/^0+$/.test(m![1]!) || /^0+$/.test(m![2]!)).toBe(false);
      seen.add(m![1]!).add(m![2]!);
    }
    expect(seen.size).toBe(2_000);
  });
});

describe('newSpanId', () => {
  it('gives distinct 16-hex ids across several pool refills, and a pool with an all-zero id is seen', () => {
    const seen = new Set<string>();
    // A pool holds 512 ids: 2,000 take it through several refills.
    for (let i = 0; i < 2_000; i++) {
      const id = newSpanId();
      expect(id).toMatch(/^[0-9a-f]{16}$/);
      expect(id).not.toBe('0'.repeat(16));
      seen.add(id);
    }
    expect(seen.size).toBe(2_000);
    expect(hasZeroId(new Uint32Array([1, 0, 0, 0]))).toBe(true);
    expect(hasZeroId(new Uint32Array([1, 0, 0, 1]))).toBe(false);
  });
});

describe('extractParent', () => {
  it('reads W3C traceparent and keeps tracestate', () => {
    const p = extractParent({ traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=x' });
    expect(p).toMatchObject({ traceId: TRACE, spanId: PARENT, sampled: true, deferred: false, traceState: 'vendor=x' });
  });

  it('reads B3 single and multi headers, padding 64-bit trace ids', () => {
    expect(extractParent({ b3: `${TRACE}-${PARENT}-1` })).toMatchObject({ traceId: TRACE, spanId: PARENT, sampled: true, deferred: false });
    expect(extractParent({ 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': PARENT, 'x-b3-sampled': '0' })).toMatchObject({ traceId: `0000000000000000a3ce929d0e0e4736`, sampled: false, deferred: false });
    expect(extractParent({ b3: `${TRACE}-${PARENT}` })).toMatchObject({ traceId: TRACE, deferred: true });
  });

  it('ignores malformed context', () => {
    expect(extractParent({ traceparent: 'garbage' })).toBeUndefined();
    expect(extractParent({ traceparent: `00-${'0'.repeat(32)}-${PARENT}-01` })).toBeUndefined();
    expect(extractParent({})).toBeUndefined();
  });
});

describe('Tracing', () => {
  it('records a sampled request and a CLIENT child span per attempt, and injects the attempt span as parent', async () => {
    const { t, exporter } = tracing();
    const req = t.start(start({ traceparent: `00-${TRACE}-${PARENT}-01` }));
    expect(req.sampled).toBe(true);
    const h1: Headers = {};
    req.attemptStarted(1, '127.0.0.1:9101', h1).end(503, undefined);
    const h2: Headers = {};
    req.attemptStarted(2, '127.0.0.1:9102', h2).end(200, undefined);
    req.end({ status: 200, info: info({ attempts: 2, retries: 1, endpoint: '127.0.0.1:9102' }), durationMs: 5, bytesIn: 0, bytesOut: 42 });
    await t.forceFlush();
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(3);
    const [a1, a2, root] = spans;
    expect(root!.spanContext().traceId).toBe(TRACE);
    expect(root!.parentSpanContext?.spanId).toBe(PARENT);
    expect(root!.kind).toBe(SpanKind.CLIENT);
    expect(root!.name).toBe('GET users-default');
    expect(root!.attributes).toMatchObject({ 'http.request.method': 'GET', 'url.path': '/api/users/7', 'server.address': 'users', 'server.port': 8080, 'http.response.status_code': 200, 'meshlet.route': 'users-default', 'meshlet.endpoint': '127.0.0.1:9102', 'meshlet.attempts': 2 });
    for (const a of [a1!, a2!]) {
      expect(a.kind).toBe(SpanKind.CLIENT);
      expect(a.parentSpanContext?.spanId).toBe(root!.spanContext().spanId);
    }
    expect(a1!.attributes).toMatchObject({ 'network.peer.address': '127.0.0.1', 'network.peer.port': 9101, 'http.response.status_code': 503, 'error.type': '503' });
    expect(a1!.attributes['http.request.resend_count']).toBeUndefined();
    expect(a1!.status.code).toBe(SpanStatusCode.ERROR);
    expect(a2!.attributes).toMatchObject({ 'http.request.resend_count': 1, 'meshlet.endpoint': '127.0.0.1:9102' });
    expect(h1.traceparent).toBe(`00-${TRACE}-${a1!.spanContext().spanId}-01`);
    expect(h2.traceparent).toBe(`00-${TRACE}-${a2!.spanContext().spanId}-01`);
    await t.shutdown();
  });

  it('uses a SERVER span inbound and marks the error code on a failed request', async () => {
    const { t, exporter } = tracing({ sampler: 'always_on' });
    const req = t.start(start({}, 'inbound'));
    req.attemptStarted(1, '127.0.0.1:8080', {}).end(undefined, 'UPSTREAM_CONNECT_FAILURE');
    req.end({ status: 502, info: info({ errorCode: 'UPSTREAM_CONNECT_FAILURE' }), durationMs: 1, bytesIn: 0, bytesOut: 80 });
    await t.forceFlush();
    const [attempt, root] = exporter.getFinishedSpans();
    expect(root!.kind).toBe(SpanKind.SERVER);
    expect(root!.parentSpanContext).toBeUndefined();
    expect(root!.attributes).toMatchObject({ 'meshlet.error_code': 'UPSTREAM_CONNECT_FAILURE', 'error.type': 'UPSTREAM_CONNECT_FAILURE' });
    expect(root!.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempt!.attributes['meshlet.error_code']).toBe('UPSTREAM_CONNECT_FAILURE');
    expect(root!.resource.attributes['service.name']).toBe('orders');
    await t.shutdown();
  });

  it('follows an unsampled parent: no span, the caller context forwarded as received', async () => {
    const { t, exporter } = tracing({ sampler: 'parentbased_always_on' });
    const tp = `00-${TRACE}-${PARENT}-00`;
    const req = t.start(start({ traceparent: tp, tracestate: 'a=1' }));
    expect(req.sampled).toBe(false);
    expect(req.traceId).toBe(TRACE);
    const h: Headers = {};
    req.attemptStarted(1, '127.0.0.1:9101', h).end(200, undefined);
    req.end({ status: 200, info: info(), durationMs: 1, bytesIn: 0, bytesOut: 0 });
    await t.forceFlush();
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(h).toEqual({ traceparent: tp, tracestate: 'a=1' });
  });

  it('starts an unsampled trace with flags 00 so the next sidecar agrees', () => {
    const { t } = tracing({ sampleRatio: 0.5, random: () => 0.9 });
    const req = t.start(start({}));
    expect(req.sampled).toBe(false);
    const h: Headers = {};
    req.attemptStarted(1, 'x:1', h);
    expect(h.traceparent).toMatch(new RegExp(`^00-${req.traceId}-[0-9a-f]{16}-00$`));
  });

  it('samples new traces at the configured ratio; OTEL_TRACES_SAMPLER_ARG overrides the mesh config', () => {
    let r = 0.3;
    const { t } = tracing({ sampleRatio: 0.25, random: () => r });
    expect(t.start(start({})).sampled).toBe(false);
    t.setSampleRatio(0.5);
    expect(t.start(start({})).sampled).toBe(true);
    r = 0.05;
    const { t: pinned } = tracing({ sampleRatio: 1, ratioOverride: 0.01, random: () => r });
    expect(pinned.sampleRatio).toBe(0.01);
    expect(pinned.start(start({})).sampled).toBe(false);
    expect(() => t.setSampleRatio(2)).toThrow();
  });

  it('accepts a B3 sampled parent and answers in W3C', async () => {
    const { t, exporter } = tracing();
    const req = t.start(start({ 'x-b3-traceid': TRACE, 'x-b3-spanid': PARENT, 'x-b3-sampled': '1' }));
    expect(req.sampled).toBe(true);
    const h: Headers = {};
    req.attemptStarted(1, '127.0.0.1:9101', h).end(200, undefined);
    req.end({ status: 200, info: info(), durationMs: 1, bytesIn: 0, bytesOut: 0 });
    await t.forceFlush();
    const root = exporter.getFinishedSpans().find((s) => s.attributes['meshlet.attempt'] === undefined);
    expect(root?.parentSpanContext?.spanId).toBe(PARENT);
    expect(h.traceparent).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
  });
});

describe('tracingEnv', () => {
  it('is off without an OTLP endpoint, or when disabled', () => {
    expect(tracingEnv({})).toBeUndefined();
    expect(tracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
  });

  it('reads the sampler, its argument and the service name', () => {
    expect(tracingEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5', OTEL_SERVICE_NAME: 'svc' })).toEqual({ sampler: 'traceidratio', ratio: 0.5, serviceName: 'svc', protocol: 'http/protobuf' });
    expect(tracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' })).toEqual({ sampler: 'parentbased_traceidratio', ratio: undefined, serviceName: undefined, protocol: 'http/protobuf' });
  });

  it('exports protobuf by default (the OTLP spec default) and JSON when asked, the traces variable winning', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
    expect(tracingEnv(base)?.protocol).toBe('http/protobuf');
    expect(tracingEnv({ ...base, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })?.protocol).toBe('http/json');
    expect(tracingEnv({ ...base, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' })?.protocol).toBe('http/protobuf');
    expect(tracingEnv({ ...base, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: ' ' })?.protocol).toBe('http/json');
    expect(() => tracingEnv({ ...base, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' })).toThrow(/OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc".*gRPC exporter/);
  });

  it('names the variable that is malformed', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
    for (const [variable, value] of [
      ['OTEL_TRACES_SAMPLER_ARG', '1.5'],
      ['OTEL_TRACES_SAMPLER', 'sometimes'],
      ['OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc'],
      ['OTEL_EXPORTER_OTLP_ENDPOINT', '127.0.0.1:4318'],
    ] as const) {
      let err: unknown;
      try {
        tracingEnv({ ...base, [variable]: value });
      } catch (e) {
        err = e;
      }
      expect(isMeshError(err, 'CONFIG_INVALID')).toBe(true);
      expect((err as { details: { variable: string } }).details.variable).toBe(variable);
    }
  });
});
