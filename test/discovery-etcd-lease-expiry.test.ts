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

const etcdEndpoints = async (cpUrl: string) => {
  const r = await api<{ services: Array<{ name: string; endpoints: Array<{ address: string; weight: number; labels: Record<string, string>; source: string; health: string }> }> }>(cpUrl, '/v1/services');
  return (r.body.services.find((s) => s.name === 'users')?.endpoints ?? []).filter((e) => e.source === 'etcd').sort((a, b) => a.address.localeCompare(b.address));
};
const addresses = async (cpUrl: string) => (await etcdEndpoints(cpUrl)).map((e) => e.address).join();

/** A real process that registers one instance under a 2 s lease; on SIGTERM it deregisters (revokes) and exits. */
const registrant = (id: string, address: string) =>
  spawnProcess(process.execPath, [
    '--input-type=module',
    '-e',
    `import { createEtcdClient, registerInEtcd } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/control-plane/discovery/etcd.js')).href)};
     const client = createEtcdClient(${JSON.stringify(etcd.clientUrls)});
     const reg = await registerInEtcd(client, 'users', { id: ${JSON.stringify(id)}, address: ${JSON.stringify(address)}, weight: 2, labels: { zone: 'a' } }, 2);
     console.log(JSON.stringify({ msg: 'registered', lease: await reg.leaseId() }));
     process.once('SIGTERM', async () => { await reg.stop(); client.close(); process.exit(0); });
     setInterval(() => {}, 1000);`,
  ]);

it('drops a killed instance when its lease expires, keeps a live one, and drops a stopped one at once', async () => {
  const config = path.join(dir, 'mesh.yaml');
  await writeFile(config, `services:\n  users:\n    discovery:\n      etcd: { endpoints: ${JSON.stringify(etcd.clientUrls)} }\n`);
  const cp = await startControlPlane({ dataDir: path.join(dir, 'cp'), config });
  const [a, b, c] = [registrant('users-1', '127.0.0.1:9101'), registrant('users-2', '127.0.0.1:9102'), registrant('users-3', '127.0.0.1:9103')];
  await Promise.all([a, b, c].map((p) => p.waitForLog((l) => l.msg === 'registered')));
  await waitFor(async () => (await addresses(cp.url)) === '127.0.0.1:9101,127.0.0.1:9102,127.0.0.1:9103', { timeoutMs: 10_000, what: 'three instances' });
  expect((await etcdEndpoints(cp.url))[0]).toMatchObject({ weight: 2, labels: { zone: 'a' }, health: 'up' });

  await a.stop('SIGKILL');
  await waitFor(async () => (await addresses(cp.url)) === '127.0.0.1:9102,127.0.0.1:9103', { timeoutMs: 10_000, what: 'users-1 gone after its lease expired' });

  // users-2 and users-3 outlive several TTLs thanks to keepalives.
  const seen = new Set<string>();
  const until = Date.now() + 5_000;
  await waitFor(async () => {
    seen.add(await addresses(cp.url));
    return Date.now() > until;
  }, { timeoutMs: 10_000, intervalMs: 250, what: '5 s of observations' });
  expect([...seen]).toEqual(['127.0.0.1:9102,127.0.0.1:9103']);

  await b.stop('SIGTERM');
  expect(await b.exited).toBe(0);
  // Revoked, not expired: gone well before a 2 s lease could have run out.
  await waitFor(async () => (await addresses(cp.url)) === '127.0.0.1:9103', { timeoutMs: 1_500, what: 'users-2 gone on revoke' });
});
