// Consul discovery. Consul cannot be installed here, so the control plane talks to a TEST DOUBLE of
// Consul's HTTP API (test/harness/consul-double.ts: blocking queries with X-Consul-Index and wait).
// A change in the catalog reaches /v1/services through a parked blocking query — watched, not polled.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConsulDouble } from './harness/consul-double.js';
import { stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, startControlPlane, tempDir } from './control-plane-fixture.js';

let consul: ConsulDouble;
let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('consul-blocking'));
  consul = await ConsulDouble.start();
});
afterAll(async () => {
  await stopAll();
  await consul?.close();
  await cleanup?.();
});

type Endpoint = { address: string; weight: number; labels: Record<string, string>; source: string; health: string };
const consulEndpoints = async (cpUrl: string): Promise<Endpoint[]> => {
  const r = await api<{ services: Array<{ name: string; endpoints: Endpoint[] }> }>(cpUrl, '/v1/services');
  return (r.body.services.find((s) => s.name === 'users')?.endpoints ?? []).filter((e) => e.source === 'consul').sort((a, b) => a.address.localeCompare(b.address));
};

it('maps passing instances with tags, meta and weights, and follows changes through blocking queries', async () => {
  consul.setInstances('users', [
    { id: 'users-1', port: 9101, meta: { version: 'v1' } },
    { id: 'users-2', port: 9102, address: '127.0.0.2', tags: ['canary'], meta: { version: 'v2' }, weights: { passing: 3, warning: 1 } },
    { id: 'users-3', port: 9103, status: 'critical' },
  ]);
  const config = path.join(dir, 'mesh.yaml');
  await writeFile(config, `services:\n  users:\n    discovery:\n      consul: { address: "${consul.address}", wait: 20s }\n`);
  const cp = await startControlPlane({ dataDir: path.join(dir, 'cp'), config });
  const first = await waitFor(async () => {
    const e = await consulEndpoints(cp.url);
    return e.length === 2 ? e : undefined;
  }, { timeoutMs: 30_000, what: 'two passing consul endpoints' });
  expect(first.map(({ address, weight, labels, health }) => ({ address, weight, labels, health }))).toEqual([
    { address: '127.0.0.1:9101', weight: 1, labels: { version: 'v1' }, health: 'up' },
    { address: '127.0.0.2:9102', weight: 3, labels: { version: 'v2', 'tag.canary': 'true' }, health: 'up' },
  ]);

  // The provider parks a blocking query on the index it last saw.
  await waitFor(() => consul.blockedQueries >= 1, { timeoutMs: 20_000, what: 'a parked blocking query' });
  const parkedAt = consul.index;
  const before = consul.requests.length;
  consul.setInstances('users', [
    { id: 'users-1', port: 9101, meta: { version: 'v1' } },
    { id: 'users-4', port: 9104 },
  ]);
  await waitFor(async () => (await consulEndpoints(cp.url)).map((e) => e.address).join() === '127.0.0.1:9101,127.0.0.1:9104', { timeoutMs: 20_000, what: 'the changed set' });
  const health = consul.requests.filter((r) => r.path === '/v1/health/service/users');
  expect(health.at(-1)!.query).toMatchObject({ passing: 'true', wait: '20000ms' });
  expect(health.some((r) => r.query.index === String(parkedAt))).toBe(true);
  // Watched, not polled: one answer for the change and one new parked query, give or take a retry.
  expect(consul.requests.length - before).toBeLessThanOrEqual(3);
}, 180_000);
