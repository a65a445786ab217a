// HA control plane under failure: two `meshlet control-plane --store etcd` replicas on a real
// 3-member etcd cluster, a sidecar that knows both replicas, steady traffic through the sidecar,
// and a stream of config changes. Mid-way one replica AND the etcd leader are killed (SIGKILL).
// Nothing is lost: every acknowledged config version is in history with its content, versions are
// consecutive, the sidecar converges on the last one, and no request through the sidecar failed.
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, callThrough, sidecarConfig, startApp, startControlPlane, startSidecar, tempDir, type App, type ControlPlaneProc } from './control-plane-fixture.js';

let etcd: EtcdCluster;
let blue: App;
let green: App;
let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('ha-failures'));
  [etcd, blue, green] = await Promise.all([startEtcd({ members: 3 }), startApp('blue'), startApp('green')]);
});
afterAll(async () => {
  await stopAll();
  await Promise.all([etcd?.stop(), blue?.close(), green?.close()]);
  await cleanup?.();
});

const CHANGES = 12;
const KILL_AFTER = 4;
const color = (i: number) => (i % 2 === 0 ? 'blue' : 'green');
const text = (i: number) => `# change ${i}\nservices:\n  users:\n    endpoints: [{ address: ${(i % 2 === 0 ? blue : green).address} }]\n  web: {}\n`;

it('loses nothing when a replica and the etcd leader die while config changes and traffic flow', async () => {
  const store = ['--store', 'etcd', '--etcd-endpoints', etcd.clientUrls.join(',')];
  const [a, b] = await Promise.all([
    startControlPlane({ dataDir: path.join(dir, 'a'), extra: store }),
    startControlPlane({ dataDir: path.join(dir, 'b'), extra: store }),
  ]);
  const acked: Array<{ change: number; version: number }> = [];
  /** One change, through the first replica that takes it (A, B alternate as first choice). */
  const apply = async (i: number): Promise<void> => {
    const order: ControlPlaneProc[] = i % 2 === 0 ? [a, b] : [b, a];
    const res = await waitFor(async () => {
      for (const cp of order) {
        const r = await api<{ version: number }>(cp.url, '/v1/config', { method: 'PUT', body: text(i), headers: { 'content-type': 'application/yaml', 'x-meshlet-note': `change ${i}` } }).catch(() => undefined);
        // 201 new version; 200 "unchanged" when an earlier attempt landed but its answer was lost.
        if (r && (r.status === 201 || r.status === 200)) return r.body;
      }
      return undefined;
    }, { timeoutMs: 30_000, intervalMs: 100, what: `change ${i} accepted by a replica` });
    acked.push({ change: i, version: res.version });
  };

  await apply(0);
  const sidecar = await startSidecar({ controlPlane: `${a.url},${b.url}`, service: 'web', dataDir: path.join(dir, 'web') });
  await waitFor(async () => (await callThrough(sidecar, 'users')).body === 'blue', { timeoutMs: 30_000, what: 'traffic on blue' });

  // Steady traffic, bounded in count and time.
  const traffic = { ok: 0, failed: [] as string[], stop: false };
  const trafficDone = (async () => {
    const end = Date.now() + 90_000;
    for (let n = 0; n < 50_000 && !traffic.stop && Date.now() < end; n++) {
      try {
        const r = await callThrough(sidecar, 'users');
        if (r.status === 200 && (r.body === 'blue' || r.body === 'green')) traffic.ok++;
        else traffic.failed.push(`${r.status} ${r.body}`);
      } catch (e) {
        traffic.failed.push((e as Error).message);
      }
    }
  })();

  for (let i = 1; i <= CHANGES; i++) {
    if (i === KILL_AFTER) {
      const leader = await etcd.leader();
      await Promise.all([a.proc.stop('SIGKILL'), etcd.kill(leader)]);
    }
    await apply(i);
  }

  // The sidecar (failed over to B) converges on the last version and routes by it.
  const last = acked.at(-1)!;
  // Converged = B's snapshot is named by the last version and the sidecar runs its content. (Pushes
  // are by content: when a version is coalesced with the one that undoes it, the sidecar keeps the
  // earlier version number of the same content, and B reports it synced.)
  await waitFor(
    async () => {
      const s = await api<{ snapshot: { version: string; hash: string } | null }>(b.url, '/v1/sidecars');
      return s.body.snapshot?.version === String(last.version) && (await sidecarConfig(sidecar))?.hash === s.body.snapshot.hash;
    },
    { timeoutMs: 40_000, what: `sidecar running the content of version ${last.version}` },
  );
  await waitFor(async () => (await callThrough(sidecar, 'users')).body === color(CHANGES), { timeoutMs: 30_000, what: 'traffic on the last color' });
  traffic.stop = true;
  await trafficDone;

  // History is complete: consecutive versions, each acknowledged change with its content.
  const h = await api<{ current: number; versions: Array<{ version: number; note: string }> }>(b.url, '/v1/config/history');
  const versions = h.body.versions.map((v) => v.version).sort((x, y) => x - y);
  expect(h.body.current).toBe(last.version);
  expect(versions).toEqual(Array.from({ length: versions.length }, (_, k) => versions[0]! + k));
  expect(acked.map((x) => x.version)).toEqual(Array.from({ length: CHANGES + 1 }, (_, k) => acked[0]!.version + k));
  for (const { change, version } of acked) {
    const v = await api<{ note: string; text: string }>(b.url, `/v1/config/versions/${version}?format=json`);
    expect(v.status).toBe(200);
    expect(JSON.stringify(v.body)).toContain(`change ${change}`);
  }

  expect(traffic.failed).toEqual([]);
  expect(traffic.ok).toBeGreaterThan(100);
}, 180_000);
