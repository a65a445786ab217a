// etcd discovery against a real etcd: instances register themselves under leases
// (registerInEtcd); a killed instance's key vanishes when its lease expires and the control plane,
// watching the prefix, drops it; a stopped one revokes its lease and goes at once.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { ROOT, spawnProcess, stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, startControlPlane, tempDir } from './control-plane-fixture.js';

let etcd: EtcdCluster;
let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('etcd-lease'));
  etcd = await startEtcd();
});
afterAll(async () => {
  await stopAll();
  await etcd?.stop();
  await cleanup?.();
});

const etcdEndpoints = async (cpUrl: string, service = 'users') => {
  const r = await api<{ services: Array<{ name: string; endpoints: Array<{ address: string; weight: number; labels: Record<string, string>; source: string; health: string }> }> }>(cpUrl, '/v1/services');
  return (r.body.services.find((s) => s.name === service)?.endpoints ?? []).filter((e) => e.source === 'etcd').sort((a, b) => a.address.localeCompare(b.address));
};
const addresses = async (cpUrl: string) => (await etcdEndpoints(cpUrl)).map((e) => e.address).join();

/** A real process that registers one instance under a lease (2 s default); on SIGTERM it deregisters (revokes) and exits. */
const registrant = (id: string, address: string, service = 'users', ttlSeconds = 2) =>
  spawnProcess(process.execPath, [
    '--input-type=module',
    '-e',
    `import { createEtcdClient, registerInEtcd } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/control-plane/discovery/etcd.js')).href)};
     const client = createEtcdClient(${JSON.stringify(etcd.clientUrls)});
     const reg = await registerInEtcd(client, ${JSON.stringify(service)}, { id: ${JSON.stringify(id)}, address: ${JSON.stringify(address)}, weight: 2, labels: { zone: 'a' } }, ${ttlSeconds});
     console.log(JSON.stringify({ msg: 'registered', lease: await reg.leaseId() }));
     process.once('SIGTERM', async () => { await reg.stop(); client.close(); process.exit(0); });
     setInterval(() => {}, 1000);`,
  ]);

it('drops a killed instance when its lease expires, keeps a live one, and drops a stopped one at once', async () => {
  const config = path.join(dir, 'mesh.yaml');
  // Two services on one etcd: their providers share one client (and its connections).
  await writeFile(config, `services:\n  users:\n    discovery:\n      etcd: { endpoints: ${JSON.stringify(etcd.clientUrls)} }\n  orders:\n    discovery:\n      etcd: { endpoints: ${JSON.stringify(etcd.clientUrls)} }\n`);
  const cp = await startControlPlane({ dataDir: path.join(dir, 'cp'), config });
  const [a, b, c, o] = [registrant('users-1', '127.0.0.1:9101'), registrant('users-2', '127.0.0.1:9102', 'users', 60), registrant('users-3', '127.0.0.1:9103'), registrant('orders-1', '127.0.0.1:9201', 'orders')];
  await Promise.all([a, b, c, o].map((p) => p.waitForLog((l) => l.msg === 'registered', 40_000)));
  await waitFor(async () => (await addresses(cp.url)) === '127.0.0.1:9101,127.0.0.1:9102,127.0.0.1:9103', { timeoutMs: 30_000, what: 'three instances' });
  expect((await etcdEndpoints(cp.url))[0]).toMatchObject({ weight: 2, labels: { zone: 'a' }, health: 'up' });
  await waitFor(async () => (await etcdEndpoints(cp.url, 'orders')).map((e) => e.address).join() === '127.0.0.1:9201', { timeoutMs: 30_000, what: 'orders-1 under its own prefix' });

  await a.stop('SIGKILL');
  await waitFor(async () => (await addresses(cp.url)) === '127.0.0.1:9102,127.0.0.1:9103', { timeoutMs: 30_000, what: 'users-1 gone after its lease expired' });

  // users-3 outlives many of its 2 s leases thanks to keepalives (users-2 holds a 60 s one).
  const seen = new Set<string>();
  const until = Date.now() + 5_000;
  await waitFor(async () => {
    seen.add(await addresses(cp.url));
    return Date.now() > until;
  }, { timeoutMs: 30_000, intervalMs: 250, what: '5 s of observations' });
  expect([...seen]).toEqual(['127.0.0.1:9102,127.0.0.1:9103']);

  await b.stop('SIGTERM');
  expect(await b.exited).toBe(0);
  // Revoked, not expired: gone well before its 60 s lease could have run out.
  await waitFor(async () => (await addresses(cp.url)) === '127.0.0.1:9103', { timeoutMs: 30_000, what: 'users-2 gone on revoke' });
}, 180_000);
