// Traces across two real sidecars exported over OTLP/HTTP to a real local receiver:
// client → orders' sidecar (outbound) → users' sidecar (inbound) → users app.
// The orders mesh config samples every new trace; the users sidecar's config samples none, so every
// users span seen proves it followed the caller's decision (parent-based) from traceparent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOtlpReceiver, SPAN_KIND, type OtlpReceiver, type ReceivedSpan } from './harness/otlp-receiver.js';
import { stopAll } from './harness/process.js';
import { refusedAddress } from './harness/refused.js';
import { call, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type EchoBody, type Upstream } from './harness/upstream.js';

let receiver: OtlpReceiver;
let app: Upstream;
let usersSidecar: SidecarHandle;
let ordersSidecar: SidecarHandle;
let deadAddress: string;

const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
const inTrace = (traceId: string) => (spans: ReceivedSpan[]) => spans.filter((s) => s.traceId === traceId);

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  app = await startUpstream({ id: 'users-app' });
  // An address that refuses every connect (not a released port, which another test may be given).
  deadAddress = await refusedAddress();

  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' };
  usersSidecar = await startSidecar({
    service: 'users',
    args: ['--app', app.address],
    // One sidecar exports OTLP/JSON, the other the default protobuf: both encodings on the real wire.
    env: { ...env, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
    config: { services: { users: { endpoints: [{ address: app.address }] } }, telemetry: { tracing: { sampleRatio: 0 } } },
  });
  ordersSidecar = await startSidecar({
    service: 'orders',
    env,
    config: {
      services: {
        users: { endpoints: [{ address: usersSidecar.inbound! }], retry: { attempts: 2, on: ['503'], backoff: { base: '1ms', max: '2ms' } } },
        ghost: { endpoints: [{ address: deadAddress }], retry: { attempts: 1 } },
      },
      routes: [{ name: 'users-api', match: { service: 'users', pathPrefix: '/api/' }, backends: [{ service: 'users' }] }],
      telemetry: { tracing: { sampleRatio: 1 } },
    },
  });
});

afterAll(async () => {
  await stopAll();
  await app?.close();
  await receiver?.close();
});

describe('tracing across two sidecars', () => {
  it('links client → orders request → attempt → users server span → attempt to the app, with HTTP attributes', async () => {
    const traceId = hex(32);
    const clientSpan = hex(16);
    const r = await call(ordersSidecar.outbound, { host: 'users', path: '/api/users/7?secret=1', headers: { traceparent: `00-${traceId}-${clientSpan}-01` } });
    expect(r.status).toBe(200);
    const spans = inTrace(traceId)(await receiver.waitForSpans((all) => inTrace(traceId)(all).length >= 4));
    expect(spans).toHaveLength(4);

    const ordersReq = spans.find((s) => s.service === 'orders' && s.parentSpanId === clientSpan)!;
    expect(ordersReq).toBeDefined();
    expect(ordersReq.kind).toBe(SPAN_KIND.CLIENT);
    expect(ordersReq.name).toBe('GET users-api');
    expect(ordersReq.attributes).toMatchObject({ 'http.request.method': 'GET', 'url.path': '/api/users/7', 'server.address': 'users', 'http.response.status_code': 200, 'meshlet.service': 'users', 'meshlet.route': 'users-api', 'meshlet.attempts': 1 });

    const ordersTry = spans.find((s) => s.service === 'orders' && s.parentSpanId === ordersReq.spanId)!;
    expect(ordersTry.kind).toBe(SPAN_KIND.CLIENT);
    expect(ordersTry.attributes).toMatchObject({ 'meshlet.endpoint': usersSidecar.inbound, 'network.peer.port': Number(usersSidecar.inbound!.split(':')[1]), 'http.response.status_code': 200 });
    expect(ordersTry.attributes['http.request.resend_count']).toBeUndefined();

    // The users sidecar's span hangs under the orders attempt that reached it.
    const usersServer = spans.find((s) => s.service === 'users' && s.parentSpanId === ordersTry.spanId)!;
    expect(usersServer.kind).toBe(SPAN_KIND.SERVER);
    expect(usersServer.attributes).toMatchObject({ 'url.path': '/api/users/7', 'http.response.status_code': 200, 'meshlet.direction': 'inbound' });

    const usersTry = spans.find((s) => s.service === 'users' && s.parentSpanId === usersServer.spanId)!;
    expect(usersTry.kind).toBe(SPAN_KIND.CLIENT);
    expect(usersTry.attributes['meshlet.endpoint']).toBe(app.address);
    // The app saw the users attempt as its parent.
    expect((r.json() as EchoBody).headers.traceparent).toBe(`00-${traceId}-${usersTry.spanId}-01`);
    // orders exported in the default encoding (protobuf), users in the JSON it was told to use.
    expect(spans.filter((s) => s.service === 'orders').map((s) => s.encoding)).toEqual(['protobuf', 'protobuf']);
    expect(spans.filter((s) => s.service === 'users').map((s) => s.encoding)).toEqual(['json', 'json']);
  });

  it('records each retry as its own attempt span with http.request.resend_count', async () => {
    await app.setBehaviour({ kind: 'fail-first', count: 1, status: 503 });
    const traceId = hex(32);
    const r = await call(ordersSidecar.outbound, { host: 'users', path: '/api/retry', headers: { traceparent: `00-${traceId}-${hex(16)}-01` } });
    expect(r.status).toBe(200);
    await app.setBehaviour({ kind: 'echo' });
    // orders: request + 2 attempts; users: 2 × (server + attempt).
    const spans = inTrace(traceId)(await receiver.waitForSpans((all) => inTrace(traceId)(all).length >= 7));
    const ordersReq = spans.find((s) => s.service === 'orders' && s.attributes['meshlet.attempts'] !== undefined)!;
    expect(ordersReq.attributes['meshlet.attempts']).toBe(2);
    const tries = spans.filter((s) => s.service === 'orders' && s.parentSpanId === ordersReq.spanId).sort((a, b) => Number(a.startNs - b.startNs));
    expect(tries).toHaveLength(2);
    expect(tries[0]!.attributes).toMatchObject({ 'http.response.status_code': 503, 'error.type': '503' });
    expect(tries[0]!.statusCode).toBe(2);
    expect(tries[1]!.attributes).toMatchObject({ 'http.response.status_code': 200, 'http.request.resend_count': 1 });
    const usersServers = spans.filter((s) => s.service === 'users' && s.kind === SPAN_KIND.SERVER);
    expect(usersServers.map((s) => s.parentSpanId).sort()).toEqual(tries.map((t) => t.spanId).sort());
  });

  it('carries the meshlet error code on a failed request', async () => {
    const traceId = hex(32);
    const r = await call(ordersSidecar.outbound, { host: 'ghost', path: '/', headers: { traceparent: `00-${traceId}-${hex(16)}-01` } });
    expect(r.status).toBe(502);
    const spans = inTrace(traceId)(await receiver.waitForSpans((all) => inTrace(traceId)(all).length >= 2));
    const req = spans.find((s) => s.attributes['meshlet.attempts'] !== undefined)!;
    const attempt = spans.find((s) => s.parentSpanId === req.spanId)!;
    expect(req.attributes).toMatchObject({ 'meshlet.error_code': 'UPSTREAM_CONNECT_FAILURE', 'http.response.status_code': 502 });
    expect(req.statusCode).toBe(2);
    expect(attempt.attributes).toMatchObject({ 'meshlet.error_code': 'UPSTREAM_CONNECT_FAILURE', 'meshlet.endpoint': deadAddress });
  });

  it('accepts B3 on input and continues the trace in W3C', async () => {
    const traceId = hex(32);
    const parent = hex(16);
    const r = await call(ordersSidecar.outbound, { host: 'users', path: '/api/b3', headers: { b3: `${traceId}-${parent}-1` } });
    expect(r.status).toBe(200);
    const spans = inTrace(traceId)(await receiver.waitForSpans((all) => inTrace(traceId)(all).length >= 4));
    expect(spans.find((s) => s.service === 'orders' && s.parentSpanId === parent)).toBeDefined();
    expect((r.json() as EchoBody).headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  });

  it('records nothing for an unsampled caller but still propagates its context', async () => {
    const unsampled = hex(32);
    const tp = `00-${unsampled}-${hex(16)}-00`;
    const r = await call(ordersSidecar.outbound, { host: 'users', path: '/api/quiet', headers: { traceparent: tp } });
    expect((r.json() as EchoBody).headers.traceparent).toBe(tp);
    // A sampled request sent afterwards through the same two sidecars is the barrier: once its 4 spans
    // arrived, spans of the earlier request would have been exported too.
    const barrier = hex(32);
    await call(ordersSidecar.outbound, { host: 'users', path: '/api/barrier', headers: { traceparent: `00-${barrier}-${hex(16)}-01` } });
    await receiver.waitForSpans((all) => inTrace(barrier)(all).length >= 4);
    expect(inTrace(unsampled)(receiver.spans)).toEqual([]);
  });
});
