// A real Prometheus server scrapes a real sidecar's admin /metrics every second, and the request
// counter the sidecar exposes comes back through Prometheus' own query API with the exact count sent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { startPrometheus, type PrometheusServer } from './harness/prometheus.js';
import { call, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';
import { waitFor } from './harness/wait.js';

let users: Upstream;
let broken: Upstream;
let sidecar: SidecarHandle;
let prom: PrometheusServer | undefined;

beforeAll(async () => {
  users = await startUpstream({ id: 'users-1' });
  broken = await startUpstream({ id: 'billing-1', behaviour: { kind: 'status', status: 503 } });
  sidecar = await startSidecar({
    service: 'orders',
    config: {
      services: { users: { endpoints: [{ address: users.address }] }, billing: { endpoints: [{ address: broken.address }], retry: { attempts: 1 } } },
      routes: [{ name: 'users-api', match: { service: 'users', pathPrefix: '/api/' }, backends: [{ service: 'users' }] }],
    },
  });
});

afterAll(async () => {
  await prom?.stop();
  await stopAll();
  await users?.close();
  await broken?.close();
});

describe('Prometheus scrapes a sidecar', () => {
  it('queries the request counter back with the count of requests sent, by route and class', async () => {
    const SENT_OK = 7;
    const SENT_FAILED = 3;
    for (let i = 0; i < SENT_OK; i++) expect((await call(sidecar.outbound, { host: 'users', path: `/api/users/${i}?q=${i}` })).status).toBe(200);
    for (let i = 0; i < SENT_FAILED; i++) expect((await call(sidecar.outbound, { host: 'billing', path: '/invoices' })).status).toBe(503);

    prom = await startPrometheus({ sidecars: [sidecar.admin] });
    const ok = await waitFor(
      async () => {
        const r = await prom!.query('sum by (route, status_class) (meshlet_requests_total{job="sidecars",direction="outbound",service="users"})');
        return r.length > 0 ? r : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 500, what: 'the counter in Prometheus' },
    );
    expect(ok).toHaveLength(1);
    expect(ok[0]!.metric).toEqual({ route: 'users-api', status_class: '2xx' });
    expect(Number(ok[0]!.value[1])).toBe(SENT_OK);

    const failed = await prom.query('sum(meshlet_requests_total{job="sidecars",service="billing",status_class="5xx"})');
    expect(Number(failed[0]?.value[1])).toBe(SENT_FAILED);
    // Latency histogram made it too: every request sent has an observation.
    const count = await prom.query('sum(meshlet_request_duration_seconds_count{job="sidecars",direction="outbound"})');
    expect(Number(count[0]?.value[1])).toBe(SENT_OK + SENT_FAILED);
    const targets = await prom.targets();
    expect(targets).toEqual([expect.objectContaining({ job: 'sidecars', health: 'up', lastError: '' })]);
  });
});
