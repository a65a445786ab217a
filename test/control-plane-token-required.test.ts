// With --token-file, every call that changes state needs the bearer token; reads stay open.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, ctl, startControlPlane, startSidecar, tempDir } from './control-plane-fixture.js';

let cleanup: (() => Promise<void>) | undefined;
afterAll(async () => {
  await stopAll();
  await cleanup?.();
});

it('refuses writes, registrations and ACKs without the right token and changes nothing', async () => {
  const t = await tempDir('token');
  cleanup = t.cleanup;
  const cp = await startControlPlane({ dataDir: path.join(t.dir, 'cp'), token: 'right-token' });
  const yaml = 'services:\n  users:\n    endpoints:\n      - { address: 127.0.0.1:9101 }\n';
  const auth = { authorization: 'Bearer right-token' };
  expect((await api(cp.url, '/v1/config', { method: 'PUT', body: yaml, headers: auth })).status).toBe(201);

  const calls: Array<[string, string, string | undefined]> = [
    ['PUT', '/v1/config', 'services:\n  other: {}\n'],
    ['POST', '/v1/config/rollback', '{"version":1}'],
    ['POST', '/v1/sidecars', '{"id":"x","service":"users","address":"127.0.0.1:1","adminAddress":"127.0.0.1:2"}'],
    ['POST', '/v1/sidecars/x/heartbeat', undefined],
    ['POST', '/v1/sidecars/x/ack', '{"hash":"' + 'a'.repeat(64) + '","version":"1","ok":true}'],
    ['DELETE', '/v1/sidecars/x', undefined],
  ];
  for (const [method, p, body] of calls) {
    for (const headers of [{}, { authorization: 'Bearer wrong-token' }, { authorization: 'Basic cmlnaHQtdG9rZW4=' }]) {
      const r = await api(cp.url, p, { method, body, headers });
      expect(r.status, `${method} ${p} ${JSON.stringify(headers)}`).toBe(401);
      expect(r.headers.get('x-meshlet-error')).toBe('UNAUTHORIZED');
      expect(r.body.error.code).toBe('UNAUTHORIZED');
    }
  }
  // Reads need no token.
  expect((await api(cp.url, '/v1/config')).status).toBe(200);
  expect((await api(cp.url, '/v1/sidecars')).body.sidecars).toEqual([]);
  expect((await api(cp.url, '/v1/config/history')).body.versions).toHaveLength(1);

  // ctl without or with a wrong token: exit 4 and a message that says what to do.
  const file = path.join(t.dir, 'm.yaml');
  await writeFile(file, 'services:\n  other: {}\n');
  const noToken = await ctl(['apply', '-f', file], { MESHLET_CONTROL_PLANE: cp.url });
  expect(noToken.code).toBe(4);
  expect(noToken.stderr).toMatch(/needs a token.*--token or MESHLET_TOKEN/);
  const wrong = await ctl(['apply', '-f', file, '--token', 'nope'], { MESHLET_CONTROL_PLANE: cp.url });
  expect(wrong.code).toBe(4);
  expect(wrong.stderr).toContain('the token was refused');

  // A sidecar with a wrong token never registers; one with the right token does.
  const bad = await startSidecar({ controlPlane: cp.url, service: 'web', dataDir: path.join(t.dir, 's-bad'), id: 'web-bad', token: 'nope' });
  await bad.proc.waitForLog((l) => typeof l.err === 'string' && l.err.includes('UNAUTHORIZED'), 45_000);
  const good = await startSidecar({ controlPlane: cp.url, service: 'web', dataDir: path.join(t.dir, 's-good'), id: 'web-good', token: 'right-token' });
  void good;
  const list = await waitFor(async () => {
    const s = (await api(cp.url, '/v1/sidecars')).body.sidecars as Array<{ id: string; status: string }>;
    return s.some((x) => x.id === 'web-good' && x.status === 'synced') ? s : undefined;
  }, { timeoutMs: 45_000 });
  expect(list.map((s) => s.id)).toEqual(['web-good']);
  expect((await api(cp.url, '/v1/config/history')).body.versions).toHaveLength(1);
}, 240_000);
