// kill -9 of the control plane while sidecars carry traffic: not one request fails, and the
// sidecars reconnect and resync when it is back.
import path from 'node:path';
import { Agent } from 'node:http';
import { afterAll, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, callThrough, startApp, startControlPlane, startSidecar, tempDir, type App } from './control-plane-fixture.js';

let apps: App[] = [];
let cleanup: (() => Promise<void>) | undefined;
afterAll(async () => {
  await stopAll();
  await Promise.all(apps.map((a) => a.close()));
  await cleanup?.();
});

it('serves every request while the control plane is killed and restarted', async () => {
  const t = await tempDir('cp-kill');
  cleanup = t.cleanup;
  apps = await Promise.all([startApp('a'), startApp('b')]);
  const dataDir = path.join(t.dir, 'cp');
  const cp = await startControlPlane({ dataDir });
  expect((await api(cp.url, '/v1/config', { method: 'PUT', body: `services:\n  users:\n    endpoints:\n${apps.map((a) => `      - { address: ${a.address} }\n`).join('')}` })).status).toBe(201);
  const sidecars = await Promise.all([1, 2].map((n) => startSidecar({ controlPlane: cp.url, service: 'web', id: `web-${n}`, dataDir: path.join(t.dir, `s${n}`) })));
  for (const s of sidecars) await waitFor(async () => (await callThrough(s, 'users')).status === 200, { timeoutMs: 45_000 });

  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const results = { ok: 0, failed: [] as string[], afterKill: 0 };
  let killed = false;
  const deadline = Date.now() + 60_000;
  // Bounded: 1,200 requests or 60 s, whichever first.
  for (let i = 0; i < 1200 && Date.now() < deadline; i++) {
    const s = sidecars[i % 2]!;
    try {
      const r = await callThrough(s, 'users', `/req/${i}`, agent);
      if (r.status === 200 && (r.body === 'a' || r.body === 'b')) results.ok++;
      else results.failed.push(`${r.status} ${r.body.slice(0, 80)}`);
    } catch (e) {
      results.failed.push((e as Error).message);
    }
    if (killed) results.afterKill++;
    if (i === 100) {
      cp.proc.child.kill('SIGKILL');
      await cp.proc.exited;
      killed = true;
    }
    if (killed && results.afterKill >= 300) break;
  }
  agent.destroy();
  expect(results.failed).toEqual([]);
  // Traffic went on after the kill (the deadline may cut it short on a loaded machine).
  expect(results.afterKill).toBeGreaterThanOrEqual(100);
  for (const s of sidecars) await s.proc.waitForLog((l) => l.msg === 'control plane unreachable' || l.msg === 'control plane stream closed', 45_000);

  // Back on the same port and data dir: both sidecars re-register and are synced again.
  const again = await startControlPlane({ dataDir, port: cp.port });
  await waitFor(async () => {
    const list = (await api(again.url, '/v1/sidecars')).body.sidecars as Array<{ id: string; status: string; connected: boolean }>;
    return list.filter((x) => x.connected && x.status === 'synced').length === 2;
  }, { timeoutMs: 45_000, what: 'both sidecars synced after the restart' });
}, 240_000);
