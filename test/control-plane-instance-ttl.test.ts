// An instance that dies without deregistering (kill -9) disappears from its peers' endpoints once
// its TTL passes without a heartbeat.
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, callThrough, sidecarConfig, startApp, startControlPlane, startSidecar, tempDir, type App } from './control-plane-fixture.js';

let apps: App[] = [];
let cleanup: (() => Promise<void>) | undefined;
afterAll(async () => {
  await stopAll();
  await Promise.all(apps.map((a) => a.close()));
  await cleanup?.();
});

const TTL_MS = 2000;

it('drops the dead instance from the peer within the TTL, keeps the live one', async () => {
  const t = await tempDir('ttl');
  cleanup = t.cleanup;
  apps = await Promise.all([startApp('users-a'), startApp('users-b')]);
  const cp = await startControlPlane({ dataDir: path.join(t.dir, 'cp'), instanceTtl: `${TTL_MS}ms` });
  expect((await api(cp.url, '/v1/config', { method: 'PUT', body: 'services:\n  users: {}\n  web: {}\n' })).status).toBe(201);
  const [ua, ub] = await Promise.all(apps.map((a, i) => startSidecar({ controlPlane: cp.url, service: 'users', id: `users-${i}`, app: a.address, dataDir: path.join(t.dir, `u${i}`) })));
  const web = await startSidecar({ controlPlane: cp.url, service: 'web', id: 'web-1', dataDir: path.join(t.dir, 'web') });
  const usersAt = async (): Promise<string[]> => ((await sidecarConfig(web))?.endpoints.users ?? []).map((e) => e.address).sort();
  await waitFor(async () => (await usersAt()).length === 2, { timeoutMs: 45_000, what: 'both users instances at the web sidecar' });
  expect(await usersAt()).toEqual([ua!.inbound, ub!.inbound].sort());

  ua!.proc.child.kill('SIGKILL');
  await ua!.proc.exited;
  // The bound: TTL, plus one coalescing window and the push, with slack for a loaded machine.
  await waitFor(async () => (await usersAt()).length === 1, { timeoutMs: TTL_MS + 5000, what: 'the dead instance gone from the peer' });
  expect(await usersAt()).toEqual([ub!.inbound]);
  const services = (await api(cp.url, '/v1/services')).body.services as Array<{ name: string; endpoints: Array<{ address: string; source: string }> }>;
  expect(services.find((s) => s.name === 'users')?.endpoints).toEqual([expect.objectContaining({ address: ub!.inbound, source: 'registered' })]);
  // Traffic from web now only reaches the live instance.
  for (let i = 0; i < 10; i++) expect((await callThrough(web, 'users')).body).toBe('users-b');
}, 240_000);
