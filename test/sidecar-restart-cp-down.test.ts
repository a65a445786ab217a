// A sidecar restarted while the control plane is down serves from the snapshot it saved.
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, callThrough, sidecarConfig, startApp, startControlPlane, startSidecar, tempDir, type App } from './control-plane-fixture.js';

let blue: App | undefined;
let cleanup: (() => Promise<void>) | undefined;
afterAll(async () => {
  await stopAll();
  await blue?.close();
  await cleanup?.();
});

it('routes with the saved snapshot when no control plane answers', async () => {
  const t = await tempDir('restart-cp-down');
  cleanup = t.cleanup;
  blue = await startApp('blue');
  const cp = await startControlPlane({ dataDir: path.join(t.dir, 'cp') });
  expect((await api(cp.url, '/v1/config', { method: 'PUT', body: `services:\n  users:\n    endpoints:\n      - { address: ${blue.address} }\n` })).status).toBe(201);
  const sidecarDir = path.join(t.dir, 'sidecar');
  const first = await startSidecar({ controlPlane: cp.url, service: 'web', id: 'web-1', dataDir: sidecarDir });
  await waitFor(async () => (await callThrough(first, 'users')).body === 'blue', { timeoutMs: 45_000 });
  const applied = await sidecarConfig(first);
  expect(await first.proc.stop('SIGTERM')).toBe(0);

  cp.proc.child.kill('SIGKILL');
  await cp.proc.exited;
  await expect(fetch(`${cp.url}/v1/health`)).rejects.toThrow();

  const second = await startSidecar({ controlPlane: cp.url, service: 'web', id: 'web-1', dataDir: sidecarDir });
  await second.proc.waitForLog((l) => l.msg === 'serving the saved snapshot until the control plane answers', 45_000);
  expect((await callThrough(second, 'users')).body).toBe('blue');
  expect((await sidecarConfig(second))?.hash).toBe(applied?.hash);
  expect(second.proc.logs.some((l) => l.msg === 'control plane connected')).toBe(false);
}, 240_000);
