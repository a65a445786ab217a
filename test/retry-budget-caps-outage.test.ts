// Under a full outage the retry budget caps retries: total upstream attempts stay within
// requests × (1 + ratio) + floor (minPerSecond × window), although the policy allows 3 tries each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, load, metricSum, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';

const REQUESTS = 1_000;
const RATIO = 0.2;
// A window longer than the test, so the floor is granted once and the bound is exact.
const MIN_PER_SECOND = 1;
const WINDOW_S = 60;
const FLOOR = MIN_PER_SECOND * WINDOW_S;

let down: Upstream[];
let refusedAddress: string;
let sidecar: SidecarHandle;

beforeAll(async () => {
  down = await Promise.all(['d1', 'd2'].map((id) => startUpstream({ id, behaviour: { kind: 'status', status: 503 } })));
  // A port nothing listens on: every connect is refused.
  const closed = await startUpstream({ id: 'gone' });
  refusedAddress = closed.address;
  await closed.close();
  const retry = { attempts: 3, on: ['connect-failure', 'reset', '503'], backoff: { base: '1ms', max: '2ms' }, budget: { ratio: RATIO, minPerSecond: MIN_PER_SECOND, window: `${WINDOW_S}s` } };
  // Breakers off (a huge threshold): the point is what retries alone would do to a failing backend.
  const circuitBreaker = { consecutiveFailures: 1_000_000 };
  sidecar = await startSidecar({
    config: {
      services: {
        users: { endpoints: down.map((u) => ({ address: u.address })), retry, circuitBreaker },
        ledger: { endpoints: [{ address: refusedAddress }], retry, circuitBreaker },
      },
    },
  });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await Promise.all(down.map((u) => u.close()));
});

describe('retry budget under a full outage', () => {
  it('keeps upstream attempts within requests × (1 + ratio) + floor when every answer is 503', async () => {
    const { results, errors, started } = await load({ total: REQUESTS, concurrency: 8, timeoutMs: 90_000 }, async (i) => (await call(sidecar.outbound, { host: 'users', path: `/u/${i}` })).status);
    expect(errors).toEqual([]);
    expect(started).toBe(REQUESTS);
    expect(results.every((s) => s === 503)).toBe(true);
    const attempts = (await Promise.all(down.map((u) => u.stats()))).reduce((n, s) => n + s.requests, 0);
    const bound = REQUESTS * (1 + RATIO) + FLOOR;
    console.log(`${REQUESTS} requests → ${attempts} upstream attempts (bound ${bound}; without a budget ${REQUESTS * 3})`);
    expect(attempts).toBeLessThanOrEqual(bound);
    // Retries did happen, up to the budget (the floor alone allows FLOOR of them).
    expect(attempts).toBeGreaterThan(REQUESTS + FLOOR / 2);
    const metrics = (await fetch(`http://${sidecar.admin}/metrics`).then((r) => r.text()));
    expect(metricSum(metrics, 'meshlet_retry_budget_exhausted_total', { service: 'users' })).toBeGreaterThan(0);
  }, 120_000);

  it('answers RETRY_BUDGET_EXHAUSTED once the budget is spent on refused connections', async () => {
    const { results, errors } = await load({ total: REQUESTS, concurrency: 8, timeoutMs: 90_000 }, async (i) => {
      const r = await call(sidecar.outbound, { host: 'ledger', path: `/l/${i}` });
      return `${r.status} ${String(r.headers['x-meshlet-error'])}`;
    });
    expect(errors).toEqual([]);
    const counts: Record<string, number> = {};
    for (const r of results) counts[r] = (counts[r] ?? 0) + 1;
    console.log('refused-connection outage →', counts);
    expect(Object.keys(counts).sort()).toEqual(['502 UPSTREAM_CONNECT_FAILURE', '503 RETRY_BUDGET_EXHAUSTED']);
    const metrics = await fetch(`http://${sidecar.admin}/metrics`).then((r) => r.text());
    const retries = metricSum(metrics, 'meshlet_retries_total', { service: 'ledger' });
    console.log(`${REQUESTS} requests → ${retries} retries (bound ${REQUESTS * RATIO + FLOOR})`);
    expect(retries).toBeLessThanOrEqual(REQUESTS * RATIO + FLOOR);
    expect(retries).toBeGreaterThan(0);
  }, 120_000);
});
