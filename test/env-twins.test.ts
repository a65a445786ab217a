// Every flag has a MESHLET_* twin; a variable meant for one subcommand (a container's
// MESHLET_INBOUND) must not break another, while a misspelt flag is still refused.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { spawnMeshlet, stopAll } from './harness/process.js';

afterAll(stopAll);
const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-env-'));

it('configures the sidecar from MESHLET_* variables alone', async () => {
  const file = path.join(dir, 'mesh.yaml');
  writeFileSync(file, 'services:\n  users: {}\n');
  const p = spawnMeshlet(['sidecar'], {
    env: { MESHLET_SERVICE: 'orders', MESHLET_CONFIG: file, MESHLET_OUTBOUND: '127.0.0.1:0', MESHLET_INBOUND: '127.0.0.1:0', MESHLET_ADMIN: '127.0.0.1:0', MESHLET_ACCESS_LOG: 'off', MESHLET_DATA_DIR: path.join(dir, 'sc') },
  });
  const admin = await p.waitForLog((l) => l.msg === 'listening' && l.listener === 'admin');
  expect(String(admin.address)).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(p.logs.some((l) => l.msg === 'listening' && l.listener === 'inbound')).toBe(false); // no MESHLET_APP: no inbound
  expect(await p.stop()).toBe(0);
});

it('ignores variables that belong to another subcommand', async () => {
  const p = spawnMeshlet(['control-plane', '--data-dir', path.join(dir, 'cp')], { env: { MESHLET_INBOUND: '0.0.0.0:15006', MESHLET_SERVICE: 'users', MESHLET_LISTEN: '127.0.0.1:0' } });
  const l = await p.waitForLog((x) => x.msg === 'listening');
  expect(l.listener).toBe('api');
  expect(await p.stop()).toBe(0);
});

it('still refuses a misspelt flag on the command line', async () => {
  const p = spawnMeshlet(['control-plane', '--data-dir', path.join(dir, 'cp2'), '--lisen', '127.0.0.1:0']);
  expect(await p.exited).not.toBe(0);
  expect(p.output()).toContain('Unknown argument: lisen');
});
