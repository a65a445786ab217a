import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../clock.js';
import { OVERFLOW_VALUE } from './bounded-label.js';
import { createControlPlaneMetrics, Registry, registerProcessMetrics, SidecarMetrics, statusClass } from './metrics.js';

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const m = registry.getSingleMetric(name);
  if (!m) return undefined;
  const data = await m.get();
  const hit = data.values.find((v) => v.metricName === undefined || v.metricName === name ? Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want) : false);
  return hit?.value;
}

function promtool(exposition: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('statusClass', () => {
  it('maps statuses to classes and out-of-range to none', () => {
    expect([statusClass(200), statusClass(204), statusClass(404), statusClass(503), statusClass(0), statusClass(999)]).toEqual(['2xx', '2xx', '4xx', '5xx', 'none', 'none']);
  });
});

describe('SidecarMetrics', () => {
  const sample = { direction: 'outbound' as const, service: 'users', route: 'users-canary', backend: 'users', status: 200, errorCode: undefined, durationMs: 12, bytesIn: 10, bytesOut: 200 };

  it('exposes the access log\'s dropped lines as a counter read at scrape time', async () => {
    const r = new Registry();
    const m = new SidecarMetrics(r);
    let dropped = 0;
    m.accessLogDropped(() => dropped);
    expect(await value(r, 'meshlet_access_log_dropped_total')).toBe(0);
    dropped = 7;
    expect(await value(r, 'meshlet_access_log_dropped_total')).toBe(7);
    dropped = 9;
    expect(await value(r, 'meshlet_access_log_dropped_total')).toBe(9);
  });

  it('counts requests by direction, service, route, backend, class and error code', async () => {
    const r = new Registry();
    const m = new SidecarMetrics(r);
    m.request(sample);
    m.request(sample);
    m.request({ ...sample, status: 503, errorCode: 'NO_HEALTHY_UPSTREAM' });
    expect(await value(r, 'meshlet_requests_total', { status_class: '2xx', route: 'users-canary', error_code: '' })).toBe(2);
    expect(await value(r, 'meshlet_requests_total', { status_class: '5xx', error_code: 'NO_HEALTHY_UPSTREAM' })).toBe(1);
    expect(await value(r, 'meshlet_response_bytes_total', { service: 'users' })).toBe(600);
    const text = await r.metrics();
    // 12 ms falls in the 0.025 s bucket, not in the 0.01 s one.
    expect(text).toMatch(/meshlet_request_duration_seconds_bucket\{le="0.01",direction="outbound",service="users",route="users-canary",backend="users",status_class="2xx"\} 0/);
    expect(text).toMatch(/meshlet_request_duration_seconds_bucket\{le="0.025",direction="outbound",service="users",route="users-canary",backend="users",status_class="2xx"\} 2/);
  });

  it('caps a label that keeps growing instead of creating a series per value', async () => {
    const r = new Registry();
    const m = new SidecarMetrics(r);
    for (let i = 0; i < 600; i++) m.request({ ...sample, route: `r${i}` });
    const data = await r.getSingleMetric('meshlet_requests_total')!.get();
    const routes = new Set(data.values.map((v) => v.labels.route));
    expect(routes.size).toBe(513); // 512 distinct + the overflow value
    expect(await value(r, 'meshlet_requests_total', { route: OVERFLOW_VALUE })).toBe(600 - 512);
  });

  it('tracks breaker state, transitions and ejections', async () => {
    const r = new Registry();
    const m = new SidecarMetrics(r);
    m.breakerTransition('users', '127.0.0.1:9101', 'closed', 'open');
    expect(await value(r, 'meshlet_circuit_breaker_state', { endpoint: '127.0.0.1:9101' })).toBe(2);
    m.breakerTransition('users', '127.0.0.1:9101', 'open', 'half-open');
    expect(await value(r, 'meshlet_circuit_breaker_state', { endpoint: '127.0.0.1:9101' })).toBe(1);
    m.breakerTransition('users', '127.0.0.1:9101', 'half-open', 'closed');
    expect(await value(r, 'meshlet_circuit_breaker_state', { endpoint: '127.0.0.1:9101' })).toBe(0);
    expect(await value(r, 'meshlet_endpoint_ejections_total', { service: 'users' })).toBe(1);
    expect(await value(r, 'meshlet_circuit_breaker_transitions_total', { from: 'open', to: 'half-open' })).toBe(1);
    m.endpointRemoved('users', '127.0.0.1:9101');
    expect(await value(r, 'meshlet_circuit_breaker_state', { endpoint: '127.0.0.1:9101' })).toBeUndefined();
  });

  it('keeps exactly one config info series, the snapshot in force', async () => {
    const r = new Registry();
    const m = new SidecarMetrics(r);
    m.configApplied('3', 'a'.repeat(64));
    m.configApplied('4', 'b'.repeat(64));
    m.configRefused();
    const data = await r.getSingleMetric('meshlet_config_info')!.get();
    expect(data.values).toEqual([{ value: 1, labels: { version: '4', hash: 'b'.repeat(12) } }]);
    expect(await value(r, 'meshlet_config_applied_total')).toBe(2);
    expect(await value(r, 'meshlet_config_refused_total')).toBe(1);
  });

  it('produces an exposition that promtool accepts, process metrics included', async () => {
    const r = new Registry();
    registerProcessMetrics(r);
    const m = new SidecarMetrics(r);
    m.request(sample);
    m.request({ ...sample, direction: 'inbound', status: 0, errorCode: 'CLIENT_CLOSED' });
    m.retry('users', 'users-canary', 'gateway-error');
    m.retryBudgetExhausted('users', 'users-canary');
    m.breakerTransition('users', '[::1]:9101', 'closed', 'open');
    m.overflow('users', 'pending');
    m.endpoints('users', 3, 1);
    m.configApplied('7', 'c'.repeat(64));
    const text = await r.metrics();
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).not.toContain('nodejs_active_handles_total');
    const check = promtool(text);
    expect(check.out).toBe('');
    expect(check.status).toBe(0);
  });
});

describe('ControlPlaneMetrics', () => {
  it('measures push → ACK latency on the injected clock and counts ACKs and NACKs', async () => {
    const clock = new FakeClock();
    const r = new Registry();
    const m = createControlPlaneMetrics(r, { clock, processMetrics: false });
    m.connectedSidecars(2);
    m.pushSent('a');
    m.pushSent('b');
    clock.advance(30);
    m.pushAcked('a');
    clock.advance(300);
    m.pushRefused('b');
    m.pushAcked('a'); // no push pending: counted, no latency sample
    m.configVersion(5);
    expect(await value(r, 'meshlet_cp_pushes_total')).toBe(2);
    expect(await value(r, 'meshlet_cp_push_responses_total', { result: 'ack' })).toBe(2);
    expect(await value(r, 'meshlet_cp_push_responses_total', { result: 'nack' })).toBe(1);
    expect(await value(r, 'meshlet_cp_connected_sidecars')).toBe(2);
    expect(await value(r, 'meshlet_cp_config_version')).toBe(5);
    const text = await r.metrics();
    expect(text).toMatch(/meshlet_cp_push_ack_duration_seconds_bucket\{le="0.025",result="ack"\} 0/);
    expect(text).toMatch(/meshlet_cp_push_ack_duration_seconds_bucket\{le="0.05",result="ack"\} 1/);
    expect(text).toMatch(/meshlet_cp_push_ack_duration_seconds_bucket\{le="0.25",result="nack"\} 0/);
    expect(text).toMatch(/meshlet_cp_push_ack_duration_seconds_bucket\{le="0.5",result="nack"\} 1/);
    expect(text).toMatch(/meshlet_cp_push_ack_duration_seconds_count\{result="ack"\} 1/);
  });

  it('reads connected sidecars and sync states from the pusher at scrape time', async () => {
    const r = new Registry();
    const m = createControlPlaneMetrics(r, { processMetrics: false });
    const pusher = { connectedCount: 2, states: () => [{ status: 'synced' }, { status: 'synced' }, { status: 'refused' }] };
    m.trackSyncStates(pusher);
    let text = await r.metrics();
    expect(text).toMatch(/meshlet_cp_connected_sidecars 2/);
    expect(text).toMatch(/meshlet_cp_sidecars\{status="synced"\} 2/);
    expect(text).toMatch(/meshlet_cp_sidecars\{status="refused"\} 1/);
    pusher.connectedCount = 0;
    pusher.states = () => [];
    text = await r.metrics();
    expect(text).toMatch(/meshlet_cp_connected_sidecars 0/);
    expect(text).toMatch(/meshlet_cp_sidecars\{status="synced"\} 0/);
  });

  it('passes promtool with the process subset', async () => {
    const r = new Registry();
    const m = createControlPlaneMetrics(r);
    m.pushSent('a');
    m.pushAcked('a');
    const check = promtool(await r.metrics());
    expect(check.out).toBe('');
    expect(check.status).toBe(0);
  });
});
