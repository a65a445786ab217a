// A snapshot one sidecar cannot apply shows as refused (with its reason) in `ctl status`, while that
// sidecar keeps serving with the config it had and the others move on. The refusing sidecar is the
// real data path with one simulated rule of an older release (see control-plane-old-release-sidecar.ts).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { spawnProcess, stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, callThrough, ctl, sidecarConfig, startApp, startControlPlane, startSidecar, tempDir, type App, type SidecarProc } from './control-plane-fixture.js';

let apps: App[] = [];
let cleanup: (() => Promise<void>) | undefined;
afterAll(async () => {
  await stopAll();
  await Promise.all(apps.map((a) => a.close()));
  await cleanup?.();
});

type SidecarRow = { id: string; status: string; applied: { version: string } | null; lastRefusal: { version: string; reason: string } | null };

it('shows the refusal and its reason while the refusing sidecar serves the old config', async () => {
  const t = await tempDir('refusal');
  cleanup = t.cleanup;
  const [blue, green] = (apps = await Promise.all([startApp('blue'), startApp('green')]));
  const cp = await startControlPlane({ dataDir: path.join(t.dir, 'cp') });
  const env = { MESHLET_CONTROL_PLANE: cp.url };
  const file = path.join(t.dir, 'mesh.yaml');
  await writeFile(file, `services:\n  users:\n    endpoints:\n      - { address: ${blue!.address} }\n`);
  expect((await ctl(['apply', '-f', file], env)).code).toBe(0);

  const current = await startSidecar({ controlPlane: cp.url, service: 'web', id: 'web-new', dataDir: path.join(t.dir, 'new') });
  const oldProc = spawnProcess(process.execPath, ['--import', 'tsx', path.join('test', 'control-plane-old-release-sidecar.ts'), '--control-plane', cp.url, '--id', 'web-old', '--data-dir', path.join(t.dir, 'old')]);
  // tsx compiles the script at start: slow on a loaded machine.
  const addr = async (listener: string): Promise<string> => String((await oldProc.waitForLog((l) => l.msg === 'listening' && l.listener === listener, 90_000)).address);
  const old: SidecarProc = { proc: oldProc, outbound: await addr('outbound'), admin: await addr('admin') };
  for (const s of [current, old]) await waitFor(async () => (await callThrough(s, 'users')).body === 'blue', { timeoutMs: 45_000 });

  // Version 2 moves users to green and adds a pathRegex route the old release does not know.
  await writeFile(file, `services:\n  users:\n    endpoints:\n      - { address: ${green!.address} }\nroutes:\n  - name: users-api\n    match: { service: users, pathRegex: "^/api/v[0-9]+/" }\n    backends: [ { service: users } ]\n`);
  expect((await ctl(['apply', '-f', file], env)).code).toBe(0);
  const rows = await waitFor(async () => {
    const list = (await api(cp.url, '/v1/sidecars')).body.sidecars as SidecarRow[];
    const byId = Object.fromEntries(list.map((s) => [s.id, s]));
    return byId['web-new']?.status === 'synced' && byId['web-old']?.status === 'refused' ? byId : undefined;
  }, { timeoutMs: 45_000, what: 'web-new synced and web-old refused' });
  expect(rows['web-old']!.applied?.version).toBe('1');
  expect(rows['web-old']!.lastRefusal).toMatchObject({ version: '2', reason: expect.stringContaining('routes[0].match.pathRegex: unknown field') });

  const status = await ctl(['status'], env);
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/web-old\s+web\s+refused\s+1 \(.*routes\[0\]\.match\.pathRegex: unknown field/);
  expect(status.stdout).toMatch(/web-new\s+web\s+synced\s+2 /);

  // The refusing sidecar still routes with version 1; the other with version 2.
  expect((await callThrough(old, 'users')).body).toBe('blue');
  expect((await sidecarConfig(old))?.version).toBe('1');
  expect((await callThrough(current, 'users', '/api/v1/x')).body).toBe('green');

  // A config both can apply brings the old one back in sync.
  await writeFile(file, `services:\n  users:\n    endpoints:\n      - { address: ${green!.address} }\n`);
  expect((await ctl(['apply', '-f', file], env)).code).toBe(0);
  await waitFor(async () => ((await api(cp.url, '/v1/sidecars')).body.sidecars as SidecarRow[]).every((s) => s.status === 'synced'), { timeoutMs: 45_000 });
  expect((await callThrough(old, 'users')).body).toBe('green');
}, 300_000);
