// Concurrency limits answer 503 OVERFLOW once reached — limits.maxRequests, limits.maxPending (beyond
// the endpoint's pooled connections) and the inbound --inbound-max-requests — and free up again when
// the requests in flight finish.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, metricSum, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';
import { waitFor } from './harness/wait.js';

let up: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  up = await startUpstream({ id: 'users' });
  sidecar = await startSidecar({
    config: {
      services: {
        users: { endpoints: [{ address: up.address }], limits: { maxRequests: 2 } },
        ledger: { endpoints: [{ address: up.address }], limits: { maxRequests: 100, maxConnectionsPerEndpoint: 1, maxPending: 1 } },
      },
    },
    args: ['--app', up.address, '--inbound-max-requests', '1'],
  });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await up.close();
});

const slow = { 'x-upstream-behaviour': JSON.stringify({ kind: 'delay', ms: 1_500 }) };

async function overflowWhileBusy(listener: string, host: string, busy: number): Promise<void> {
  const before = (await up.stats()).inflight;
  const inFlight = Array.from({ length: busy }, (_, i) => call(listener, { host, path: `/slow/${i}`, headers: slow }));
  // Wait until the sidecar holds all of them (a pending one never reaches the upstream, so outbound
  // asks the sidecar's own count; inbound has one request, which does reach the upstream).
  if (listener === sidecar.inbound) await waitFor(async () => (await up.stats()).inflight - before === busy, { timeoutMs: 5_000, what: 'slow requests in flight' });
  else await waitFor(async () => (await sidecar.adminJson('/endpoints')).body.services[host].inflight === busy, { timeoutMs: 5_000, what: 'slow requests in flight' });
  const refused = await call(listener, { host, path: '/one-too-many' });
  expect(refused.status).toBe(503);
  expect(refused.headers['x-meshlet-error']).toBe('OVERFLOW');
  expect(refused.json().error.code).toBe('OVERFLOW');
  for (const r of await Promise.all(inFlight)) expect(r.status).toBe(200);
  // Limits are released when the requests finish.
  expect((await call(listener, { host, path: '/after' })).status).toBe(200);
}

describe('overflow', () => {
  it('limits.maxRequests: the third concurrent request gets 503 OVERFLOW', async () => {
    await overflowWhileBusy(sidecar.outbound, 'users', 2);
  });

  it('limits.maxPending: one in flight on the only connection, one waiting, the next is refused', async () => {
    await overflowWhileBusy(sidecar.outbound, 'ledger', 2);
  });

  it('--inbound-max-requests: the second concurrent inbound request gets 503 OVERFLOW', async () => {
    await overflowWhileBusy(sidecar.inbound!, 'users', 1);
  });

  it('counts refusals in meshlet_overflows_total', async () => {
    const metrics = await fetch(`http://${sidecar.admin}/metrics`).then((r) => r.text());
    expect(metricSum(metrics, 'meshlet_overflows_total', { service: 'users', kind: 'requests' })).toBeGreaterThanOrEqual(1);
    expect(metricSum(metrics, 'meshlet_overflows_total', { service: 'ledger', kind: 'pending' })).toBe(1);
  });
});
