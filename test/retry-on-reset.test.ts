// An upstream that resets the connection before answering costs an idempotent request nothing (it is
// retried on another endpoint); a POST is not retried and gets 502 UPSTREAM_RESET. A reset after the
// response started cannot be retried: the client's connection is cut rather than left hanging.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';

let resetting: Upstream;
let healthy: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  resetting = await startUpstream({ id: 'resetting', behaviour: { kind: 'reset' } });
  healthy = await startUpstream({ id: 'healthy' });
  sidecar = await startSidecar({
    config: {
      services: {
        // Breaker off: every request below must meet the resetting endpoint when the balancer picks it.
        users: { endpoints: [{ address: resetting.address }, { address: healthy.address }], circuitBreaker: { consecutiveFailures: 1_000 } },
        truncating: { endpoints: [{ address: healthy.address }], circuitBreaker: { consecutiveFailures: 1_000 } },
      },
    },
  });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await Promise.all([resetting.close(), healthy.close()]);
});

describe('retry on reset', () => {
  it('retries GET, PUT and DELETE on the other endpoint (default policy)', async () => {
    const before = (await resetting.stats()).requests;
    for (const method of ['GET', 'PUT', 'DELETE', 'GET', 'PUT', 'DELETE']) {
      const r = await call(sidecar.outbound, { host: 'users', path: '/r', method, body: method === 'PUT' ? 'data' : undefined });
      expect(r.status).toBe(200);
      expect(r.json()).toMatchObject({ id: 'healthy', method });
    }
    // Round-robin sent about half of the first tries to the resetting endpoint.
    expect((await resetting.stats()).requests - before).toBeGreaterThanOrEqual(2);
  });

  it('does not retry a POST after a reset: 502 UPSTREAM_RESET', async () => {
    const statuses = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await call(sidecar.outbound, { host: 'users', path: '/p', method: 'POST', body: '{}' });
      statuses.add(r.status === 200 ? `200 ${r.json().id}` : `${r.status} ${String(r.headers['x-meshlet-error'])}`);
    }
    expect([...statuses].sort()).toEqual(['200 healthy', '502 UPSTREAM_RESET']);
  });

  it('cuts the client connection when the upstream dies mid-response', async () => {
    const outcome = await call(sidecar.outbound, { host: 'truncating', path: '/t', headers: { 'x-upstream-behaviour': '{"kind":"close-mid-response"}' } }).then(
      (r) => `complete ${r.status} ${r.text.length}`,
      (e: NodeJS.ErrnoException) => `cut ${e.code}`,
    );
    expect(outcome).toMatch(/^cut /);
    // The sidecar and the endpoint still serve the next request.
    expect((await call(sidecar.outbound, { host: 'truncating', path: '/next' })).status).toBe(200);
  });
});
