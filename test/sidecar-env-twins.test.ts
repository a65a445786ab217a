// Every flag of `meshlet sidecar` has a MESHLET_* environment twin: a sidecar configured only through
// the environment listens where told, forwards to its app and applies the limits it was given.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnMeshlet, stopAll, type Proc } from './harness/process.js';
import { call, closeClients, rawExchange } from './harness/sidecar.js';
import { startUpstream, type Upstream } from './harness/upstream.js';
import { waitFor } from './harness/wait.js';

let up: Upstream;
let proc: Proc;
const addresses: Record<string, string> = {};

beforeAll(async () => {
  up = await startUpstream({ id: 'users' });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlet-env-'));
  const config = path.join(dir, 'mesh.yaml');
  writeFileSync(config, `services:\n  users:\n    endpoints:\n      - address: ${up.address}\n`);
  proc = spawnMeshlet(['sidecar'], {
    env: {
      MESHLET_SERVICE: 'orders',
      MESHLET_CONFIG: config,
      MESHLET_APP: up.address,
      MESHLET_OUTBOUND: '127.0.0.1:0',
      MESHLET_INBOUND: '127.0.0.1:0',
      MESHLET_ADMIN: '127.0.0.1:0',
      MESHLET_UPSTREAM: 'users=127.0.0.1:0',
      MESHLET_DATA_DIR: path.join(dir, 'data'),
      MESHLET_ACCESS_LOG: 'off',
      MESHLET_MAX_HEADER_SIZE: '4096',
      MESHLET_HEADERS_TIMEOUT: '5s',
      MESHLET_DRAIN_TIMEOUT: '2s',
      MESHLET_INBOUND_MAX_REQUESTS: '7',
    },
  });
  for (const listener of ['outbound', 'inbound', 'admin', 'upstream:users']) {
    addresses[listener] = String((await proc.waitForLog((l) => l.msg === 'listening' && l.listener === listener, 90_000)).address);
  }
  await waitFor(async () => (await fetch(`http://${addresses.admin}/ready`)).status === 200, { timeoutMs: 30_000, what: '/ready' });
}, 120_000);

afterAll(async () => {
  closeClients();
  await stopAll();
  await up.close();
});

describe('sidecar flags from MESHLET_* environment twins', () => {
  it('binds every listener given by environment and forwards through each', async () => {
    expect((await call(addresses.outbound!, { host: 'users', path: '/o' })).json()).toMatchObject({ id: 'users', path: '/o' });
    expect((await call(addresses.inbound!, { host: 'orders', path: '/i' })).json()).toMatchObject({ id: 'users', path: '/i' });
    expect((await call(addresses['upstream:users']!, { host: 'anything', path: '/u' })).json()).toMatchObject({ id: 'users', path: '/u' });
  });

  it('applies MESHLET_MAX_HEADER_SIZE', async () => {
    const r = await rawExchange(addresses.outbound!, [`GET / HTTP/1.1\r\nHost: users\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`]);
    expect(r.status).toBe(431);
    expect((await call(addresses.outbound!, { host: 'users', path: '/small', headers: { 'x-small': 'a'.repeat(1000) } })).status).toBe(200);
  });

  it('reports the service from MESHLET_SERVICE on /ready', async () => {
    const ready = await (await fetch(`http://${addresses.admin}/ready`)).json();
    expect(ready).toMatchObject({ ready: true, service: 'orders' });
  });
});
