// Consul discovery against a TEST DOUBLE of Consul's HTTP API (Consul cannot be installed here; see
// test/harness/consul-double.ts). When X-Consul-Index goes backwards (a snapshot restore, a new
// leader), the provider resets its index to 0 as Consul's docs require, instead of blocking forever
// on an index the server will not reach soon, and picks up the current set.
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
  ({ dir, cleanup } = await tempDir('consul-backwards'));
  consul = await ConsulDouble.start();
});
afterAll(async () => {
  await stopAll();
  await consul?.close();
  await cleanup?.();
});

const consulAddresses = async (cpUrl: string): Promise<string> => {
  const r = await api<{ services: Array<{ name: string; endpoints: Array<{ address: string; source: string; health: string }> }> }>(cpUrl, '/v1/services');
  return (r.body.services.find((s) => s.name === 'users')?.endpoints ?? []).filter((e) => e.source === 'consul' && e.health === 'up').map((e) => e.address).sort().join();
};

it('resets a blocking query to index 0 when the index goes backwards, and follows the data after it', async () => {
  consul.setInstances('users', [{ id: 'users-1', port: 9101 }]);
  consul.setIndex(500);
  const config = path.join(dir, 'mesh.yaml');
  await writeFile(config, `services:\n  users:\n    discovery:\n      consul: { address: "${consul.address}", wait: 1s }\n`);
  const cp = await startControlPlane({ dataDir: path.join(dir, 'cp'), config });
  await waitFor(async () => (await consulAddresses(cp.url)) === '127.0.0.1:9101', { timeoutMs: 30_000, what: 'users-1' });
  await waitFor(() => consul.requests.some((r) => r.query.index === '500'), { timeoutMs: 20_000, what: 'a query parked on index 500' });

  consul.setIndex(10); // restored from an older snapshot
  consul.setInstances('users', [{ id: 'users-2', port: 9102 }]); // index 11: still below 500
  await waitFor(async () => (await consulAddresses(cp.url)) === '127.0.0.1:9102', { timeoutMs: 30_000, what: 'users-2 after the reset' });
  await cp.proc.waitForLog((l) => l.msg === 'Consul index went backwards; resetting the blocking query' && l.index === 500 && l.newIndex === 11);
  const health = consul.requests.filter((r) => r.path === '/v1/health/service/users');
  const reset = health.findIndex((r, i) => i > 0 && r.query.index === '0');
  expect(reset).toBeGreaterThan(0);
  // After the reset it blocks on the new, lower index, and keeps following changes.
  await waitFor(() => consul.requests.some((r) => r.query.index === '11'), { timeoutMs: 20_000, what: 'a query parked on index 11' });
  consul.setInstances('users', [{ id: 'users-2', port: 9102 }, { id: 'users-3', port: 9103 }]);
  await waitFor(async () => (await consulAddresses(cp.url)) === '127.0.0.1:9102,127.0.0.1:9103', { timeoutMs: 20_000, what: 'users-2 and users-3' });
}, 180_000);
