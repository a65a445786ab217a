// Under a full outage the retry budget caps retries: total upstream attempts stay within
// requests × (1 + ratio) + floor (minPerSecond × window), although the policy allows 3 tries each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { call, closeClients, load, metricSum, startSidecar, type SidecarHandle } from './harness/sidecar.js';
import { waitFor } from './harness/wait.js';
import { refusedAddress } from './harness/refused.js';
import { startUpstream, type Upstream } from './harness/upstream.js';

const REQUESTS = 1_000;
const RATIO = 0.2;
// A window longer than the test, so the floor is granted once and the bound is exact.
const MIN_PER_SECOND = 1;
const WINDOW_S = 60;
const FLOOR = MIN_PER_SECOND * WINDOW_S;

let down: Upstream[];
let ledgerAddress: string;
let sidecar: SidecarHandle;
let retry: object;
// Breakers off (a huge threshold): the point is what retries alone would do to a failing backend.
const circuitBreaker = { consecutiveFailures: 1_000_000 };
/** The config; `extra` adds unrelated services, so a reload changes the snapshot but not these routes. */
const meshConfig = (extra: Record<string, object> = {}): object => ({
  services: {
    users: { endpoints: down.map((u) => ({ address: u.address })), retry, circuitBreaker },
    ledger: { endpoints: [{ address: ledgerAddress }], retry, circuitBreaker },
    outage: { endpoints: down.map((u) => ({ address: u.address })), retry, circuitBreaker },
    ...extra,
  },
});

beforeAll(async () => {
  down = await Promise.all(['d1', 'd2'].map((id) => startUpstream({ id, behaviour: { kind: 'status', status: 503 } })));
  // Every connect is refused (not a released port: another test's listener may be given it).
  ledgerAddress = await refusedAddress();
  retry = { attempts: 3, on: ['connect-failure', 'reset', '503'], backoff: { base: '1ms', max: '2ms' }, budget: { ratio: RATIO, minPerSecond: MIN_PER_SECOND, window: `${WINDOW_S}s` } };
  sidecar = await startSidecar({ config: meshConfig() });
}, 120_000); // a sidecar start on a loaded 2-core machine can take tens of seconds

afterAll(async () => {
  closeClients();
  await stopAll();
  await Promise.all(down.map((u) => u.close()));
});

describe('retry budget under a full outage', () => {
  it('is not refilled by config reloads during the outage', async () => {
    const before = (await Promise.all(down.map((u) => u.stats()))).reduce((n, s) => n + s.requests, 0);
    const started = Date.now();
    const rounds = 5;
    const perRound = 200;
    for (let round = 1; round <= rounds; round++) {
      const v = (await sidecar.adminJson('/config')).body.version;
      // An unrelated change (as a control-plane push or a discovery update would bring).
      sidecar.writeConfig(meshConfig({ [`unrelated-${round}`]: { endpoints: [{ address: '127.0.0.1:9' }] } }));
      await waitFor(async () => (await sidecar.adminJson('/config')).body.version !== v, { timeoutMs: 30_000, what: 'reload applied' });
      const { errors } = await load({ total: perRound, concurrency: 8, timeoutMs: 60_000 }, async (i) => (await call(sidecar.outbound, { host: 'outage', path: `/o/${round}/${i}` })).status);
      expect(errors).toEqual([]);
    }
    const attempts = (await Promise.all(down.map((u) => u.stats()))).reduce((n, s) => n + s.requests, 0) - before;
    const requests = rounds * perRound;
    // The floor is granted once per window: once more for each window the test outlasts (a loaded machine).
    const bound = requests * (1 + RATIO) + FLOOR * Math.ceil((Date.now() - started) / (WINDOW_S * 1000));
    console.log(`${requests} requests over ${rounds} reloads → ${attempts} upstream attempts (bound ${bound})`);
    expect(attempts).toBeLessThanOrEqual(bound);
  }, 150_000);

  it('keeps upstream attempts within requests × (1 + ratio) + floor when every answer is 503', async () => {
    const before = (await Promise.all(down.map((u) => u.stats()))).reduce((n, s) => n + s.requests, 0);
    const { results, errors, started } = await load({ total: REQUESTS, concurrency: 8, timeoutMs: 90_000 }, async (i) => (await call(sidecar.outbound, { host: 'users', path: `/u/${i}` })).status);
    expect(errors).toEqual([]);
    expect(started).toBe(REQUESTS);
    expect(results.every((s) => s === 503)).toBe(true);
    const attempts = (await Promise.all(down.map((u) => u.stats()))).reduce((n, s) => n + s.requests, 0) - before;
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
