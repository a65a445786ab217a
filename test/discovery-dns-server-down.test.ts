// DNS discovery against a real dnsmasq: when the DNS server goes down the control plane keeps the
// last good endpoint set, marked stale, and sidecars keep routing to it; when it is back, fresh again.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDnsmasq, type Dnsmasq } from './harness/dnsmasq.js';
import { stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, callThrough, startApp, startControlPlane, startSidecar, tempDir, type App } from './control-plane-fixture.js';

let apps: App[] = [];
let dns: Dnsmasq | undefined;
let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('dns-down'));
  apps = await Promise.all([startApp('users-1'), startApp('users-2')]);
});
afterAll(async () => {
  await stopAll();
  await dns?.close();
  await Promise.all(apps.map((a) => a.close()));
  await cleanup?.();
});

type Endpoint = { address: string; source: string; health: string };
const dnsEndpoints = async (cpUrl: string): Promise<Endpoint[]> => {
  const r = await api<{ services: Array<{ name: string; endpoints: Endpoint[] }> }>(cpUrl, '/v1/services');
  return (r.body.services.find((s) => s.name === 'users')?.endpoints ?? []).filter((e) => e.source === 'dns');
};

it('keeps the last good set, marked stale, while the DNS server is down, and traffic keeps flowing', async () => {
  const port = (a: App) => Number(a.address.split(':')[1]);
  dns = await startDnsmasq({
    ttl: 1,
    records: {
      srv: apps.map((a, i) => ({ name: '_http._tcp.users.mesh.test', target: `users-${i + 1}.mesh.test`, port: port(a), weight: 10 })),
      hosts: apps.map((_, i) => ({ name: `users-${i + 1}.mesh.test`, ipv4: '127.0.0.1' })),
    },
  });
  const config = path.join(dir, 'mesh.yaml');
  await writeFile(config, `services:\n  users:\n    discovery:\n      dns: { srv: _http._tcp.users.mesh.test, servers: ["${dns.server}"], refresh: 30s }\n`);
  const cp = await startControlPlane({ dataDir: path.join(dir, 'cp'), config });
  const want = apps.map((a) => a.address).sort();

  const fresh = await waitFor(async () => {
    const e = await dnsEndpoints(cp.url);
    return e.length === 2 && e.every((x) => x.health === 'up') ? e : undefined;
  }, { timeoutMs: 30_000, what: 'two fresh DNS endpoints' });
  expect(fresh.map((e) => e.address).sort()).toEqual(want);

  const sidecar = await startSidecar({ controlPlane: cp.url, service: 'web', dataDir: path.join(dir, 'web') });
  await waitFor(async () => (await callThrough(sidecar, 'users')).status === 200, { timeoutMs: 30_000, what: 'users reachable through the sidecar' });

  await dns.stop();
  // Every observation while DNS is down must still list both endpoints; eventually they are stale.
  const seen: Endpoint[][] = [];
  await waitFor(async () => {
    const e = await dnsEndpoints(cp.url);
    seen.push(e);
    return e.length === 2 && e.every((x) => x.health === 'stale');
  }, { timeoutMs: 30_000, what: 'endpoints marked stale' });
  expect(seen.every((e) => e.length === 2)).toBe(true);
  await cp.proc.waitForLog((l) => l.msg === 'discovery failed; keeping the last good set' && l.source === 'dns');

  // The sidecar got the stale set (its /endpoints says so) and still reaches both instances.
  await waitFor(async () => {
    const r = await fetch(`http://${sidecar.admin}/endpoints`);
    const body = (await r.json()) as { services: Record<string, { endpoints: Array<{ address: string; stale: boolean }> }> };
    const eps = body.services.users?.endpoints ?? [];
    return eps.length === 2 && eps.every((e) => e.stale);
  }, { timeoutMs: 30_000, what: 'the sidecar to mark both endpoints stale' });
  const bodies = new Set<string>();
  for (let i = 0; i < 20 && bodies.size < 2; i++) {
    const r = await callThrough(sidecar, 'users');
    expect(r.status).toBe(200);
    bodies.add(r.body);
  }
  expect([...bodies].sort()).toEqual(['users-1', 'users-2']);

  await dns.start();
  await waitFor(async () => {
    const e = await dnsEndpoints(cp.url);
    return e.length === 2 && e.every((x) => x.health === 'up');
  }, { timeoutMs: 30_000, what: 'endpoints fresh again after DNS is back' });
}, 180_000);
