// An invalid config is refused with every violation (path, line:column) and changes nothing: not the
// store, not the sidecars.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, callThrough, ctl, sidecarConfig, startApp, startControlPlane, startSidecar, tempDir, type App } from './control-plane-fixture.js';

let blue: App | undefined;
let cleanup: (() => Promise<void>) | undefined;
afterAll(async () => {
  await stopAll();
  await blue?.close();
  await cleanup?.();
});

it('refuses it through ctl and the API, and the store and the sidecar keep version 1', async () => {
  const t = await tempDir('invalid');
  cleanup = t.cleanup;
  blue = await startApp('blue');
  const good = `services:\n  users:\n    endpoints:\n      - { address: ${blue.address} }\n`;
  const goodFile = path.join(t.dir, 'good.yaml');
  await writeFile(goodFile, good);
  const cp = await startControlPlane({ dataDir: path.join(t.dir, 'cp'), config: goodFile });
  const sidecar = await startSidecar({ controlPlane: cp.url, service: 'web', dataDir: path.join(t.dir, 's1'), id: 'web-1' });
  await waitFor(async () => (await callThrough(sidecar, 'users')).body === 'blue', { timeoutMs: 45_000 });

  // Two mistakes on lines 3 and 5: both are reported, each at its place.
  const badFile = path.join(t.dir, 'bad.yaml');
  await writeFile(badFile, `services:\n  users:\n    timeout: soon\n    endpoints:\n      - { address: nowhere }\n`);
  const r = await ctl(['apply', '-f', badFile], { MESHLET_CONTROL_PLANE: cp.url });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`${badFile}:3:5: services.users.timeout:`);
  expect(r.stderr).toContain(`${badFile}:5:11: services.users.endpoints[0].address:`);
  expect(r.stderr).toContain('nothing was changed');

  const put = await api(cp.url, '/v1/config', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"services":{"users":{"loadBalancer":"fastest"}},"routes":[{"name":"r","match":{"service":"ghost"},"backends":[{"service":"users"}]}]}' });
  expect(put.status).toBe(422);
  expect(put.headers.get('x-meshlet-error')).toBe('CONFIG_INVALID');
  const paths = (put.body.error.details.violations as Array<{ path: string; line?: number }>).map((v) => v.path).sort();
  expect(paths).toEqual(['services.users.loadBalancer']);
  // Cross-field rules are checked too once the schema holds.
  const put2 = await api(cp.url, '/v1/config', { method: 'PUT', body: 'services:\n  users: {}\nroutes:\n  - name: r\n    match: { service: ghost }\n    backends: [ { service: users } ]\n' });
  expect(put2.status).toBe(422);
  expect(put2.body.error.details.violations).toEqual([{ path: 'routes[0].match.service', message: 'unknown service "ghost"', line: 5, column: 14 }]);

  const history = await api(cp.url, '/v1/config/history');
  expect(history.body.versions.map((v: { version: number }) => v.version)).toEqual([1]);
  expect((await api(cp.url, '/v1/config')).body.text).toBe(good);
  expect((await sidecarConfig(sidecar))?.version).toBe('1');
  expect((await callThrough(sidecar, 'users')).body).toBe('blue');
}, 240_000);
