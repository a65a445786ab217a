// HA control plane: two `meshlet control-plane --store etcd` replicas on a real 3-member etcd
// cluster. A config written through replica A reaches a sidecar connected only to replica B, a
// sidecar registered through B is listed by A, and etcd discovery with no endpoints of its own uses
// the replicas' --etcd-endpoints: both replicas serve one mesh.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEtcdClient, registerInEtcd } from '../control-plane/discovery/etcd.js';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, callThrough, ctl, startApp, startControlPlane, startSidecar, tempDir, type App } from './control-plane-fixture.js';

let etcd: EtcdCluster;
let blue: App;
let green: App;
let self: App;
let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('ha-any-replica'));
  [etcd, blue, green, self] = await Promise.all([startEtcd({ members: 3 }), startApp('blue'), startApp('green'), startApp('web-app')]);
});
afterAll(async () => {
  await stopAll();
  await Promise.all([etcd?.stop(), blue?.close(), green?.close(), self?.close()]);
  await cleanup?.();
});

it('a write through replica A reaches a sidecar on replica B; B\'s registrations are visible on A', async () => {
  const store = ['--store', 'etcd', '--etcd-endpoints', etcd.clientUrls.join(',')];
  const [a, b] = await Promise.all([
    startControlPlane({ dataDir: path.join(dir, 'a'), extra: store }),
    startControlPlane({ dataDir: path.join(dir, 'b'), extra: store }),
  ]);
  const v1 = path.join(dir, 'v1.yaml');
  const v2 = path.join(dir, 'v2.yaml');
  const orders = '  orders:\n    discovery: { etcd: {} }\n';
  await writeFile(v1, `services:\n  users:\n    endpoints: [{ address: ${blue.address} }]\n  web: {}\n${orders}`);
  await writeFile(v2, `services:\n  users:\n    endpoints: [{ address: ${green.address} }]\n  web: {}\n${orders}`);
  expect((await ctl(['apply', '-f', v1], { MESHLET_CONTROL_PLANE: a.url })).code).toBe(0);

  const sidecar = await startSidecar({ controlPlane: b.url, service: 'web', app: self.address, id: 'web-1', dataDir: path.join(dir, 'web') });
  await waitFor(async () => (await callThrough(sidecar, 'users')).body === 'blue', { timeoutMs: 30_000, what: 'blue through the sidecar on B' });

  const applied = await ctl(['apply', '-f', v2, '--note', 'to green via A'], { MESHLET_CONTROL_PLANE: a.url });
  expect(applied.code).toBe(0);
  await waitFor(async () => (await callThrough(sidecar, 'users')).body === 'green', { timeoutMs: 30_000, what: 'green through the sidecar on B' });

  // Both replicas tell the same history…
  const [ha, hb] = await Promise.all([a, b].map((cp) => api<{ versions: Array<{ version: number; note: string }> }>(cp.url, '/v1/config/history')));
  expect(hb.body).toEqual(ha.body);
  expect(JSON.stringify(hb.body)).toContain('to green via A');
  // …and the sidecar that registered through B is an endpoint on A.
  await waitFor(async () => {
    const s = await api<{ services: Array<{ name: string; endpoints: Array<{ source: string; sidecar?: string }> }> }>(a.url, '/v1/services');
    return s.body.services.find((x) => x.name === 'web')?.endpoints.some((e) => e.source === 'registered' && e.sidecar === 'web-1');
  }, { timeoutMs: 30_000, what: 'web-1 registered through B listed on A' });

  // An instance self-registered in etcd is discovered by both replicas through their own etcd endpoints.
  const client = createEtcdClient(etcd.clientUrls);
  try {
    const reg = await registerInEtcd(client, 'orders', { id: 'orders-1', address: '127.0.0.1:9301' }, 10);
    for (const cp of [a, b]) {
      await waitFor(async () => {
        const s = await api<{ services: Array<{ name: string; endpoints: Array<{ address: string; source: string }> }> }>(cp.url, '/v1/services');
        return s.body.services.find((x) => x.name === 'orders')?.endpoints.some((e) => e.source === 'etcd' && e.address === '127.0.0.1:9301');
      }, { timeoutMs: 30_000, what: `orders-1 discovered by ${cp.url}` });
    }
    await reg.stop();
  } finally {
    client.close();
  }
}, 180_000);
