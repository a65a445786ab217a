// With loadBalancer: least-request (power of two choices), a slow endpoint that piles up requests in
// flight gets a small share of the traffic, while round-robin would give it half.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, load, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';

let fast: Upstream;
let slow: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  fast = await startUpstream({ id: 'fast' });
  slow = await startUpstream({ id: 'slow', behaviour: { kind: 'delay', ms: 200 } });
  const endpoints = [{ address: fast.address }, { address: slow.address }];
  sidecar = await startSidecar({ config: { services: { users: { endpoints, loadBalancer: 'least-request' }, 'users-rr': { endpoints } } } });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await Promise.all([fast.close(), slow.close()]);
});

async function shares(host: string): Promise<Record<string, number>> {
  const { results, errors, started } = await load({ total: 400, concurrency: 8, timeoutMs: 90_000 }, async (i) => String((await call(sidecar.outbound, { host, path: `/x/${i}` })).headers['x-upstream-id']));
  expect(errors).toEqual([]);
  expect(started).toBe(400);
  const counts: Record<string, number> = {};
  for (const id of results) counts[id] = (counts[id] ?? 0) + 1;
  return counts;
}

describe('least-request', () => {
  it('sends most requests to the endpoint with fewer in flight', async () => {
    const lr = await shares('users');
    const rr = await shares('users-rr');
    console.log('least-request →', lr, ' round-robin →', rr);
    expect(rr.slow).toBe(200);
    // With 8 in flight, the slow endpoint holds most of them; two random picks find the fast one mostly.
    expect(lr.slow ?? 0).toBeLessThan(100);
  }, 150_000);
});
