// `ctl apply` of a changed config reaches three real sidecars and changes where they route.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, callThrough, ctl, startApp, startControlPlane, startSidecar, tempDir, type App, type SidecarProc } from './control-plane-fixture.js';

let blue: App;
let green: App;
let cleanup: () => Promise<void>;
afterAll(async () => {
  await stopAll();
  await Promise.all([blue?.close(), green?.close()]);
  await cleanup?.();
});

let dir: string;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('ctl-apply'));
  [blue, green] = await Promise.all([startApp('blue'), startApp('green')]);
});

it('moves the traffic of all three sidecars to the new endpoint and reports them synced', async () => {
  const cp = await startControlPlane({ dataDir: path.join(dir, 'cp'), token: 't0ken' });
  const env = { MESHLET_CONTROL_PLANE: cp.url, MESHLET_TOKEN: 't0ken' };
  const v1 = path.join(dir, 'v1.yaml');
  const v2 = path.join(dir, 'v2.yaml');
  await writeFile(v1, `services:\n  users:\n    endpoints:\n      - { address: ${blue.address} }\n`);
  await writeFile(v2, `# users move to green\nservices:\n  users:\n    endpoints:\n      - { address: ${green.address} }\n`);
  expect((await ctl(['apply', '-f', v1], env)).code).toBe(0);

  const sidecars: SidecarProc[] = await Promise.all([1, 2, 3].map((n) => startSidecar({ controlPlane: cp.url, token: 't0ken', service: 'web', id: `web-${n}`, dataDir: path.join(dir, `s${n}`) })));
  for (const s of sidecars) await waitFor(async () => (await callThrough(s, 'users')).body === 'blue', { timeoutMs: 45_000, what: 'blue through each sidecar' });

  const applied = await ctl(['apply', '-f', v2, '--note', 'to green'], env);
  expect(applied.code).toBe(0);
  expect(applied.stdout).toContain('applied: version 2');

  for (const s of sidecars) await waitFor(async () => (await callThrough(s, 'users')).body === 'green', { timeoutMs: 45_000, what: 'green through each sidecar' });
  const status = await waitFor(
    async () => {
      const body = (await api<{ sidecars: Array<{ id: string; status: string; applied: { version: string } | null }> }>(cp.url, '/v1/sidecars')).body;
      const ours = body.sidecars.filter((s) => s.id.startsWith('web-'));
      return ours.length === 3 && ours.every((s) => s.status === 'synced') ? ours : undefined;
    },
    { timeoutMs: 45_000, what: 'three synced sidecars' },
  );
  expect(status.map((s) => s.applied?.version)).toEqual(['2', '2', '2']);
  // What an operator sees.
  const table = await ctl(['status'], env);
  expect(table.stdout).toMatch(/web-1\s+web\s+synced\s+2 /);
}, 240_000);
