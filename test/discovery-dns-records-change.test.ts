// DNS discovery against a real dnsmasq: when the SRV records change, the new set is picked up at
// the record TTL (1 s here), long before the 120 s refresh, and sidecars route to the new instance.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDnsmasq, type DnsRecords, type Dnsmasq } from './harness/dnsmasq.js';
import { stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, callThrough, startApp, startControlPlane, startSidecar, tempDir, type App } from './control-plane-fixture.js';

let apps: App[] = [];
let dns: Dnsmasq | undefined;
let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('dns-change'));
  apps = await Promise.all([startApp('users-1'), startApp('users-2'), startApp('users-3')]);
});
afterAll(async () => {
  await stopAll();
  await dns?.close();
  await Promise.all(apps.map((a) => a.close()));
  await cleanup?.();
});

const port = (a: App) => Number(a.address.split(':')[1]);
/** SRV records for the given apps (priority 0), plus a lower-priority backup that must never be used. */
const records = (use: App[], backup: App): DnsRecords => ({
  srv: [
    ...use.map((a) => ({ name: '_http._tcp.users.mesh.test', target: `${a.name}.mesh.test`, port: port(a), priority: 0, weight: 10 })),
    { name: '_http._tcp.users.mesh.test', target: `${backup.name}.mesh.test`, port: port(backup), priority: 10, weight: 10 },
  ],
  hosts: apps.map((a) => ({ name: `${a.name}.mesh.test`, ipv4: '127.0.0.1' })),
});

const dnsAddresses = async (cpUrl: string): Promise<string[]> => {
  const r = await api<{ services: Array<{ name: string; endpoints: Array<{ address: string; source: string; health: string }> }> }>(cpUrl, '/v1/services');
  return (r.body.services.find((s) => s.name === 'users')?.endpoints ?? []).filter((e) => e.source === 'dns' && e.health === 'up').map((e) => e.address).sort();
};

it('follows changed SRV records within their TTL, using only the lowest priority group', async () => {
  const [a1, a2, a3] = apps as [App, App, App];
  dns = await startDnsmasq({ ttl: 1, records: records([a1, a2], a3) });
  const config = path.join(dir, 'mesh.yaml');
  await writeFile(config, `services:\n  users:\n    discovery:\n      dns: { srv: _http._tcp.users.mesh.test, servers: ["${dns.server}"], refresh: 120s }\n`);
  const cp = await startControlPlane({ dataDir: path.join(dir, 'cp'), config });
  await waitFor(async () => (await dnsAddresses(cp.url)).join() === [a1.address, a2.address].sort().join(), { timeoutMs: 30_000, what: 'users-1 and users-2 discovered' });

  const sidecar = await startSidecar({ controlPlane: cp.url, service: 'web', dataDir: path.join(dir, 'web') });
  await waitFor(async () => (await callThrough(sidecar, 'users')).status === 200, { timeoutMs: 30_000, what: 'users reachable' });

  // users-1 leaves, users-3 joins the priority-0 group; users-2 becomes the backup.
  await dns.setRecords(records([a1, a3], a2));
  await dns.setRecords(records([a3], a2));
  // Far below the 120 s refresh: only the 1 s TTL can explain seeing the change in time.
  await waitFor(async () => (await dnsAddresses(cp.url)).join() === a3.address, { timeoutMs: 30_000, what: 'only users-3 discovered' });
  await waitFor(async () => (await callThrough(sidecar, 'users')).body === 'users-3', { timeoutMs: 30_000, what: 'traffic on users-3' });
  for (let i = 0; i < 10; i++) expect((await callThrough(sidecar, 'users')).body).toBe('users-3');
}, 180_000);
