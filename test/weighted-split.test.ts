// Traffic lands where the weights say: 3:1 endpoint weights over 4,000 requests within ±5%, a 90/10
// canary split across label subsets, and routes chosen by header and path.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, load, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';

const N = 4_000;
let v1: Upstream;
let v2: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  v1 = await startUpstream({ id: 'v1' });
  v2 = await startUpstream({ id: 'v2' });
  const endpoints = [
    { address: v1.address, weight: 3, labels: { version: 'v1' } },
    { address: v2.address, weight: 1, labels: { version: 'v2' } },
  ];
  sidecar = await startSidecar({
    config: {
      services: {
        'users-wrr': { endpoints, loadBalancer: 'weighted-round-robin' },
        'users-random': { endpoints, loadBalancer: 'random' },
        users: { endpoints },
      },
      routes: [
        { name: 'canary-header', match: { service: 'users', headers: { 'x-canary': '1' } }, backends: [{ service: 'users', subset: { version: 'v2' } }] },
        { name: 'v1-path', match: { service: 'users', pathPrefix: '/api/v1/' }, backends: [{ service: 'users', subset: { version: 'v1' } }] },
        {
          name: 'canary-split',
          match: { service: 'users', pathPrefix: '/api/' },
          backends: [
            { service: 'users', subset: { version: 'v1' }, weight: 90 },
            { service: 'users', subset: { version: 'v2' }, weight: 10 },
          ],
        },
      ],
    },
  });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await Promise.all([v1.close(), v2.close()]);
});

/** Sends N requests and counts which upstream answered each. */
async function distribution(host: string, path: string, headers: Record<string, string> = {}): Promise<Record<string, number>> {
  const { results, errors, started } = await load({ total: N, concurrency: 16, timeoutMs: 100_000 }, async () => {
    const r = await call(sidecar.outbound, { host, path, headers });
    if (r.status !== 200) throw new Error(`status ${r.status}: ${r.text}`);
    return String(r.headers['x-upstream-id']);
  });
  expect(errors).toEqual([]);
  expect(started).toBe(N);
  const counts: Record<string, number> = {};
  for (const id of results) counts[id] = (counts[id] ?? 0) + 1;
  return counts;
}

/** Deterministic balancing: every count within ±5% of its expected value. */
const within5 = (count: number | undefined, expected: number): void => {
  expect(Math.abs((count ?? 0) - expected)).toBeLessThanOrEqual(expected * 0.05);
};

/**
 * Random choice: the heavy side within ±5% of its expected count, and (the bound that also holds
 * the light side) within 5 binomial standard deviations — a false alarm once in ~2 million runs.
 */
const randomWithin = (heavy: number | undefined, share: number): void => {
  within5(heavy, N * share);
  expect(Math.abs((heavy ?? 0) - N * share)).toBeLessThanOrEqual(5 * Math.sqrt(N * share * (1 - share)));
};

describe('weighted split', () => {
  it('smooth weighted round-robin sends 3:1 over 4,000 requests', async () => {
    const c = await distribution('users-wrr', '/x');
    console.log('weighted-round-robin 3:1 →', c);
    within5(c.v1, N * 0.75);
    within5(c.v2, N * 0.25);
  }, 120_000);

  it('weighted random sends 3:1 over 4,000 requests', async () => {
    const c = await distribution('users-random', '/x');
    console.log('random 3:1 →', c);
    expect(c.v1! + c.v2!).toBe(N);
    randomWithin(c.v1, 0.75);
  }, 120_000);

  it('a 90/10 canary route splits across label subsets', async () => {
    const c = await distribution('users', '/api/users/1');
    console.log('canary 90/10 →', c);
    expect(c.v1! + c.v2!).toBe(N);
    randomWithin(c.v1, 0.9);
  }, 120_000);

  it('a header match sends everything to the v2 subset', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await call(sidecar.outbound, { host: 'users', path: '/api/users/1', headers: { 'x-canary': '1' } });
      expect(r.headers['x-upstream-id']).toBe('v2');
    }
  });

  it('a path prefix match sends everything to the v1 subset, and the default route uses both', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const r = await call(sidecar.outbound, { host: 'users', path: '/api/v1/users' });
      expect(r.headers['x-upstream-id']).toBe('v1');
      // Outside /api/ the service's default route balances over both endpoints.
      seen.add(String((await call(sidecar.outbound, { host: 'users', path: '/other' })).headers['x-upstream-id']));
    }
    expect([...seen].sort()).toEqual(['v1', 'v2']);
  });
});
