// DNS discovery against a real dnsmasq: an empty answer (the SRV name vanished) after a good one is
// not believed at once. The last good set is kept, marked stale, for discovery.emptyGrace; if the
// records come back within it nothing was ever dropped, if the answer stays empty the set empties.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDnsmasq, type DnsRecords, type Dnsmasq } from './harness/dnsmasq.js';
import { stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, startControlPlane, tempDir } from './control-plane-fixture.js';

let dns: Dnsmasq | undefined;
let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('dns-empty'));
});
afterAll(async () => {
  await stopAll();
  await dns?.close();
  await cleanup?.();
});

type Endpoint = { address: string; source: string; health: string };
const dnsEndpoints = async (cpUrl: string): Promise<Endpoint[]> => {
  const r = await api<{ services: Array<{ name: string; endpoints: Endpoint[] }> }>(cpUrl, '/v1/services');
  return (r.body.services.find((s) => s.name === 'users')?.endpoints ?? []).filter((e) => e.source === 'dns');
};
const full: DnsRecords = {
  srv: [
    { name: '_http._tcp.users.mesh.test', target: 'u1.mesh.test', port: 9101 },
    { name: '_http._tcp.users.mesh.test', target: 'u2.mesh.test', port: 9102 },
  ],
  hosts: [{ name: 'u1.mesh.test', ipv4: '127.0.0.11' }, { name: 'u2.mesh.test', ipv4: '127.0.0.12' }],
};
const none: DnsRecords = { hosts: full.hosts };

it('keeps the last good set through a brief empty answer, and empties only once the answer stays empty', async () => {
  dns = await startDnsmasq({ ttl: 1, records: full });
  const config = path.join(dir, 'mesh.yaml');
  await writeFile(config, `services:\n  users:\n    discovery:\n      dns: { srv: _http._tcp.users.mesh.test, servers: ["${dns.server}"], refresh: 30s }\n      emptyGrace: 20s\n`);
  const cp = await startControlPlane({ dataDir: path.join(dir, 'cp'), config });
  await waitFor(async () => (await dnsEndpoints(cp.url)).filter((e) => e.health === 'up').length === 2, { timeoutMs: 30_000, what: 'two endpoints' });

  // A brief empty answer: held (stale), then the records return before the grace ends.
  const seen: Endpoint[][] = [];
  await dns.setRecords(none);
  await waitFor(async () => {
    const e = await dnsEndpoints(cp.url);
    seen.push(e);
    return e.length === 2 && e.every((x) => x.health === 'stale');
  }, { timeoutMs: 20_000, what: 'the empty answer held as stale' });
  await dns.setRecords(full);
  await waitFor(async () => {
    const e = await dnsEndpoints(cp.url);
    seen.push(e);
    return e.length === 2 && e.every((x) => x.health === 'up');
  }, { timeoutMs: 20_000, what: 'fresh again' });
  expect(seen.every((e) => e.length === 2)).toBe(true);

  // An empty answer that persists past the grace is believed.
  await dns.setRecords(none);
  await waitFor(async () => (await dnsEndpoints(cp.url)).every((e) => e.health === 'stale'), { timeoutMs: 20_000, what: 'held as stale' });
  await waitFor(async () => (await dnsEndpoints(cp.url)).length === 0, { timeoutMs: 60_000, what: 'the set emptied after the grace' });
  await cp.proc.waitForLog((l) => l.msg === 'empty discovery answer persisted; the service has no discovered endpoints');
}, 180_000);
