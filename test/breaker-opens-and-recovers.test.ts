// A failing endpoint is ejected by its breaker, comes back through half-open probes once it heals,
// and when every endpoint is ejected the sidecar fails fast with 503 CIRCUIT_OPEN.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';
import { waitFor } from './harness/wait.js';

let good: Upstream;
let bad: Upstream;
let dead: Upstream;
let sidecar: SidecarHandle;

beforeAll(async () => {
  good = await startUpstream({ id: 'good' });
  bad = await startUpstream({ id: 'bad', behaviour: { kind: 'status', status: 503 } });
  dead = await startUpstream({ id: 'dead', behaviour: { kind: 'status', status: 500 } });
  sidecar = await startSidecar({
    config: {
      services: {
        users: {
          endpoints: [{ address: good.address }, { address: bad.address }],
          retry: { attempts: 1 }, // every failure reaches the client, so the test sees each one
          // openFor is long enough that the ejected phase below cannot outlast it on a loaded machine.
          circuitBreaker: { consecutiveFailures: 3, openFor: '3s', maxOpenFor: '3s', halfOpenProbes: 2 },
        },
        // Both endpoints fail, but at most half of them may be ejected at once.
        capped: {
          endpoints: [{ address: bad.address }, { address: dead.address }],
          retry: { attempts: 1 },
          circuitBreaker: { consecutiveFailures: 1, openFor: '30s', maxEjectionPercent: 50 },
        },
        ledger: {
          endpoints: [{ address: dead.address }],
          retry: { attempts: 1 },
          circuitBreaker: { consecutiveFailures: 2, openFor: '30s' },
        },
      },
    },
  });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await Promise.all([good.close(), bad.close(), dead.close()]);
});

async function breakerOf(service: string, address: string): Promise<{ breaker: string; ejections: number }> {
  const { body } = await sidecar.adminJson('/endpoints');
  return body.services[service].endpoints.find((e: { address: string }) => e.address === address);
}

describe('circuit breaker', () => {
  it('ejects the failing endpoint, probes it half-open, and closes once it heals', async () => {
    // Round-robin over good/bad: 3 failures from bad trip its breaker.
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(sidecar.outbound, { host: 'users', path: `/a/${i}` })).status);
    expect(statuses.filter((s) => s === 503)).toHaveLength(3);
    expect(await breakerOf('users', bad.address)).toMatchObject({ breaker: 'open', ejections: 1 });

    // While ejected, every request goes to the good endpoint.
    const badBefore = (await bad.stats()).requests;
    for (let i = 0; i < 10; i++) {
      const r = await call(sidecar.outbound, { host: 'users', path: `/b/${i}` });
      expect(r.status).toBe(200);
      expect(r.headers['x-upstream-id']).toBe('good');
    }
    expect((await bad.stats()).requests).toBe(badBefore);

    // It heals; after openFor the breaker lets probes through (half-open).
    await bad.setBehaviour({ kind: 'echo' });
    await waitFor(async () => (await breakerOf('users', bad.address)).breaker === 'half-open', { timeoutMs: 15_000, what: 'half-open' });

    // Two successful probes close it; then it takes its share again.
    const seen: string[] = [];
    await waitFor(
      async () => {
        const r = await call(sidecar.outbound, { host: 'users', path: '/c' });
        expect(r.status).toBe(200);
        seen.push(String(r.headers['x-upstream-id']));
        return (await breakerOf('users', bad.address)).breaker === 'closed';
      },
      { timeoutMs: 5_000, what: 'breaker closed' },
    );
    expect(seen.filter((id) => id === 'bad').length).toBeGreaterThanOrEqual(2);
    const after: string[] = [];
    for (let i = 0; i < 10; i++) after.push(String((await call(sidecar.outbound, { host: 'users', path: '/d' })).headers['x-upstream-id']));
    expect(after.filter((id) => id === 'bad').length).toBe(5);
  });

  it('a failed half-open probe ejects the endpoint again', async () => {
    await bad.setBehaviour({ kind: 'status', status: 503 });
    for (let i = 0; i < 6; i++) await call(sidecar.outbound, { host: 'users', path: '/e' });
    const first = await breakerOf('users', bad.address);
    expect(first.breaker).toBe('open');
    await waitFor(async () => (await breakerOf('users', bad.address)).breaker === 'half-open', { timeoutMs: 15_000, what: 'half-open' });
    // Requests until the probe hits bad (round-robin: at most two), which fails and reopens it.
    await waitFor(async () => {
      await call(sidecar.outbound, { host: 'users', path: '/f' });
      return (await breakerOf('users', bad.address)).breaker === 'open';
    }, { timeoutMs: 5_000, what: 'reopened after a failed probe' });
    expect((await breakerOf('users', bad.address)).ejections).toBe(first.ejections + 1);
  });

  it('never ejects more than maxEjectionPercent of a service\'s endpoints', async () => {
    await bad.setBehaviour({ kind: 'status', status: 503 });
    for (let i = 0; i < 8; i++) expect((await call(sidecar.outbound, { host: 'capped', path: '/cap' })).status).toBeGreaterThanOrEqual(500);
    const { body } = await sidecar.adminJson('/endpoints');
    expect(body.services.capped.ejected).toBe(1);
    expect(body.services.capped.endpoints.map((e: { breaker: string }) => e.breaker).sort()).toEqual(['closed', 'open']);
  });

  it('fails fast with 503 CIRCUIT_OPEN when every endpoint is ejected', async () => {
    for (let i = 0; i < 2; i++) expect((await call(sidecar.outbound, { host: 'ledger', path: '/x' })).status).toBe(500);
    expect(await breakerOf('ledger', dead.address)).toMatchObject({ breaker: 'open' });
    const before = (await dead.stats()).requests;
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      const r = await call(sidecar.outbound, { host: 'ledger', path: '/x' });
      times.push(performance.now() - t);
      expect(r.status).toBe(503);
      expect(r.headers['x-meshlet-error']).toBe('CIRCUIT_OPEN');
      expect(r.json().error.code).toBe('CIRCUIT_OPEN');
    }
    times.sort((a, b) => a - b);
    console.log(`CIRCUIT_OPEN round trip through the sidecar: median ${times[10]!.toFixed(2)} ms, max ${times[19]!.toFixed(2)} ms`);
    // Failing fast means the ejected endpoint was not called at all.
    expect((await dead.stats()).requests).toBe(before);
  });
});
