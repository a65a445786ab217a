// Consul discovery against a TEST DOUBLE of Consul's HTTP API (Consul cannot be installed here; see
// test/harness/consul-double.ts). Failing answers (HTTP 500) keep the last good set, marked stale;
// an empty catalog after a good one is held for discovery.emptyGrace before it is believed.
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
  ({ dir, cleanup } = await tempDir('consul-errors'));
  consul = await ConsulDouble.start();
});
afterAll(async () => {
  await stopAll();
  await consul?.close();
  await cleanup?.();
});

type Endpoint = { address: string; source: string; health: string };
const consulEndpoints = async (cpUrl: string): Promise<Endpoint[]> => {
  const r = await api<{ services: Array<{ name: string; endpoints: Endpoint[] }> }>(cpUrl, '/v1/services');
  return (r.body.services.find((s) => s.name === 'users')?.endpoints ?? []).filter((e) => e.source === 'consul');
};

it('keeps the last good set stale through 500s and through an empty answer until the grace passes', async () => {
  consul.setInstances('users', [{ id: 'users-1', port: 9101 }, { id: 'users-2', port: 9102 }]);
  const config = path.join(dir, 'mesh.yaml');
  await writeFile(config, `services:\n  users:\n    discovery:\n      consul: { address: "${consul.address}", wait: 1s }\n      emptyGrace: 15s\n`);
  const cp = await startControlPlane({ dataDir: path.join(dir, 'cp'), config });
  await waitFor(async () => (await consulEndpoints(cp.url)).filter((e) => e.health === 'up').length === 2, { timeoutMs: 30_000, what: 'two endpoints' });

  const seen: Endpoint[][] = [];
  const observe = async (pred: (e: Endpoint[]) => boolean, what: string) =>
    waitFor(async () => {
      const e = await consulEndpoints(cp.url);
      seen.push(e);
      return pred(e);
    }, { timeoutMs: 30_000, what });

  consul.failAlways(500);
  await observe((e) => e.length === 2 && e.every((x) => x.health === 'stale'), 'stale on 500s');
  await cp.proc.waitForLog((l) => l.msg === 'discovery failed; keeping the last good set' && l.source === 'consul' && String(l.err).includes('500'));
  consul.failAlways(null);
  await observe((e) => e.length === 2 && e.every((x) => x.health === 'up'), 'fresh after the errors');

  consul.setInstances('users', []);
  await observe((e) => e.length === 2 && e.every((x) => x.health === 'stale'), 'empty answer held as stale');
  expect(seen.every((e) => e.length === 2)).toBe(true);
  await observe((e) => e.length === 0, 'emptied after the grace');
  await cp.proc.waitForLog((l) => l.msg === 'empty discovery answer persisted; the service has no discovered endpoints' && l.source === 'consul');

  // And back: a good answer after an empty one is taken at once.
  consul.setInstances('users', [{ id: 'users-3', port: 9103 }]);
  await observe((e) => e.length === 1 && e[0]!.address === '127.0.0.1:9103' && e[0]!.health === 'up', 'the new instance');
}, 180_000);
