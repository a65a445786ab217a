// The config API's contract: versions with author and note, compare-and-set, history with a limit,
// rollback as a new version, YAML text kept as written, size cap, and the error shape.
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { api, startControlPlane, tempDir } from './control-plane-fixture.js';

let cleanup: (() => Promise<void>) | undefined;
afterAll(async () => {
  await stopAll();
  await cleanup?.();
});

it('versions, CAS, history limit, rollback, YAML round-trip and errors', async () => {
  const t = await tempDir('history');
  cleanup = t.cleanup;
  const cp = await startControlPlane({ dataDir: path.join(t.dir, 'cp'), extra: ['--history-limit', '3'] });
  const empty = await api(cp.url, '/v1/config');
  expect([empty.status, empty.headers.get('x-meshlet-error'), empty.body.error.code]).toEqual([404, 'NOT_FOUND', 'NOT_FOUND']);

  const text = (n: number): string => `# edit ${n}\nservices:\n  svc-${n}: {}   # kept as written\n`;
  const put = (n: number, q = '', headers: Record<string, string> = {}) => api(cp.url, `/v1/config${q}`, { method: 'PUT', body: text(n), headers: { 'content-type': 'application/yaml', ...headers } });
  const v1 = await put(1, '?expectedVersion=0', { 'x-meshlet-author': 'alice', 'x-meshlet-note': encodeURIComponent('first — with a dash') });
  expect(v1.status).toBe(201);
  expect(v1.body).toMatchObject({ version: 1, author: 'alice', note: 'first — with a dash', unchanged: false });

  const stale = await put(2, '?expectedVersion=0');
  expect(stale.status).toBe(409);
  expect(stale.body.error).toMatchObject({ code: 'CONFLICT', details: { expectedVersion: 0, currentVersion: 1 } });
  expect((await put(2, '?expectedVersion=1')).status).toBe(201);
  for (const n of [3, 4]) expect((await put(n)).status).toBe(201);

  // Only the last 3 are kept.
  const history = await api(cp.url, '/v1/config/history');
  expect(history.body.current).toBe(4);
  expect(history.body.versions.map((v: { version: number }) => v.version)).toEqual([4, 3, 2]);
  expect((await api(cp.url, '/v1/config/versions/1')).status).toBe(404);
  expect((await api(cp.url, '/v1/config/history?limit=1')).body.versions).toHaveLength(1);

  const yaml = await api(cp.url, '/v1/config/versions/3', { headers: { accept: 'application/yaml' } });
  expect(yaml.body).toBe(text(3));
  expect(yaml.headers.get('x-meshlet-config-version')).toBe('3');

  const rb = await api(cp.url, '/v1/config/rollback', { method: 'POST', body: JSON.stringify({ version: 2, note: 'undo 3 and 4' }) });
  expect(rb.status).toBe(201);
  expect(rb.body).toMatchObject({ version: 5, rollbackOf: 2, note: 'undo 3 and 4' });
  expect((await api(cp.url, '/v1/config')).body).toMatchObject({ version: 5, text: text(2), config: { services: { 'svc-2': {} } } });
  const gone = await api(cp.url, '/v1/config/rollback', { method: 'POST', body: '{"version":1}' });
  expect([gone.status, gone.body.error.code]).toEqual([404, 'NOT_FOUND']);
  const badBody = await api(cp.url, '/v1/config/rollback', { method: 'POST', body: '{"version":"two"}' });
  expect([badBody.status, badBody.body.error.code]).toEqual([400, 'BAD_REQUEST']);
  expect(badBody.body.error.message).toContain('version');

  // Re-sending the current text makes no new version.
  const same = await api(cp.url, '/v1/config', { method: 'PUT', body: text(2) });
  expect([same.status, same.body.version, same.body.unchanged]).toEqual([200, 5, true]);

  const big = await api(cp.url, '/v1/config', { method: 'PUT', body: `services:\n  a: {}\n#${'x'.repeat(1024 * 1024)}\n` });
  expect([big.status, big.headers.get('x-meshlet-error')]).toEqual([413, 'REQUEST_TOO_LARGE']);
  expect((await api(cp.url, '/v1/config/validate', { method: 'POST', body: text(9) })).body).toEqual({ ok: true, services: 1, routes: 0 });
  const wrongMethod = await api(cp.url, '/v1/config', { method: 'DELETE' });
  expect([wrongMethod.status, wrongMethod.headers.get('allow')]).toEqual([400, 'GET, PUT']);
  expect((await api(cp.url, '/v1/nothing')).body.error.code).toBe('NOT_FOUND');
  expect((await api(cp.url, '/v1/config/history')).body.current).toBe(5);

  const metrics = await api<string>(cp.url, '/metrics');
  expect(metrics.body).toMatch(/^meshlet_cp_config_version 5$/m);
  expect(metrics.body).toMatch(/^meshlet_cp_config_versions_total\{kind="rollback"\} 1$/m);
}, 240_000);
