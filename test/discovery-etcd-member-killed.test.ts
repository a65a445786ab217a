// etcd discovery against a real 3-member etcd cluster: killing a member (the leader) loses nothing.
// Registered instances keep their leases alive through the survivors, the control plane's watch
// carries on (reconnecting if it was on the dead member), and a new registration is seen.
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
  ({ dir, cleanup } = await tempDir('etcd-member'));
  etcd = await startEtcd({ members: 3 });
});
afterAll(async () => {
  await stopAll();
  await etcd?.stop();
  await cleanup?.();
});

type Endpoint = { address: string; source: string; health: string };
const etcdEndpoints = async (cpUrl: string): Promise<Endpoint[]> => {
  const r = await api<{ services: Array<{ name: string; endpoints: Endpoint[] }> }>(cpUrl, '/v1/services');
  return (r.body.services.find((s) => s.name === 'users')?.endpoints ?? []).filter((e) => e.source === 'etcd').sort((a, b) => a.address.localeCompare(b.address));
};
const fresh = async (cpUrl: string) => (await etcdEndpoints(cpUrl)).filter((e) => e.health === 'up').map((e) => e.address).join();

const registrant = (id: string, address: string) =>
  spawnProcess(process.execPath, [
    '--input-type=module',
    '-e',
    `import { createEtcdClient, registerInEtcd } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/control-plane/discovery/etcd.js')).href)};
     const client = createEtcdClient(${JSON.stringify(etcd.clientUrls)});
     await registerInEtcd(client, 'users', { id: ${JSON.stringify(id)}, address: ${JSON.stringify(address)} }, 2);
     console.log(JSON.stringify({ msg: 'registered' }));
     setInterval(() => {}, 1000);`,
  ]);

it('keeps serving discovery when the etcd leader is killed: leases survive, new registrations are seen', async () => {
  const config = path.join(dir, 'mesh.yaml');
  await writeFile(config, `services:\n  users:\n    discovery:\n      etcd: { endpoints: ${JSON.stringify(etcd.clientUrls)} }\n`);
  const cp = await startControlPlane({ dataDir: path.join(dir, 'cp'), config });
  const regs = [registrant('users-1', '127.0.0.1:9101'), registrant('users-2', '127.0.0.1:9102')];
  await Promise.all(regs.map((p) => p.waitForLog((l) => l.msg === 'registered', 40_000)));
  await waitFor(async () => (await fresh(cp.url)) === '127.0.0.1:9101,127.0.0.1:9102', { timeoutMs: 30_000, what: 'two instances' });

  const leader = await etcd.leader();
  await etcd.kill(leader);
  expect(await etcd.healthy(leader)).toBe(false);
  await etcd.leader(); // the survivors elect a new one

  const late = registrant('users-3', '127.0.0.1:9103');
  await late.waitForLog((l) => l.msg === 'registered', 40_000);
  const seen: string[] = [];
  await waitFor(async () => {
    const e = await etcdEndpoints(cp.url);
    seen.push(e.map((x) => x.address).join());
    return e.length === 3 && e.every((x) => x.health === 'up');
  }, { timeoutMs: 30_000, what: 'three fresh instances after the leader died' });
  // users-1 and users-2 were never dropped: their leases were kept alive through the survivors.
  expect(seen.every((s) => s.includes('127.0.0.1:9101') && s.includes('127.0.0.1:9102'))).toBe(true);

  // Still alive several TTLs (2 s) later.
  const until = Date.now() + 5_000;
  const later = new Set<string>();
  await waitFor(async () => {
    later.add(await fresh(cp.url));
    return Date.now() > until;
  }, { timeoutMs: 30_000, intervalMs: 250, what: '5 s of observations' });
  expect([...later]).toEqual(['127.0.0.1:9101,127.0.0.1:9102,127.0.0.1:9103']);
}, 180_000);
