// A process registers itself in Consul with registerInConsul (agent register + TTL check it keeps
// passing). Consul cannot be installed here: the agent is a TEST DOUBLE of Consul's HTTP API
// (test/harness/consul-double.ts) that implements TTL checks and DeregisterCriticalServiceAfter.
// When the registered process is killed, its check goes critical, it leaves the passing set that
// the control plane routes to, and Consul deregisters it.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConsulDouble } from './harness/consul-double.js';
import { ROOT, spawnProcess, stopAll } from './harness/process.js';
import { waitFor } from './harness/wait.js';
import { api, startControlPlane, tempDir } from './control-plane-fixture.js';

let consul: ConsulDouble;
let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('consul-registrar'));
  consul = await ConsulDouble.start();
});
afterAll(async () => {
  await stopAll();
  await consul?.close();
  await cleanup?.();
});

const consulAddresses = async (cpUrl: string): Promise<string> => {
  const r = await api<{ services: Array<{ name: string; endpoints: Array<{ address: string; source: string; health: string }> }> }>(cpUrl, '/v1/services');
  return (r.body.services.find((s) => s.name === 'users')?.endpoints ?? []).filter((e) => e.source === 'consul' && e.health === 'up').map((e) => e.address).sort().join();
};

/** A real process that registers users-9 (TTL 2 s, deregistered 3 s after going critical) and stays up. */
const registrant = () =>
  spawnProcess(process.execPath, [
    '--input-type=module',
    '-e',
    `import { registerInConsul } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/control-plane/discovery/consul.js')).href)};
     await registerInConsul(${JSON.stringify(consul.address)}, 'users', { id: 'users-9', host: '127.0.0.1', port: 9109, tags: ['self'] }, 2, { deregisterAfterSeconds: 3 });
     console.log(JSON.stringify({ msg: 'registered' }));
     setInterval(() => {}, 1000);`,
  ]);

it('keeps a live registrant passing, and drops a killed one from the passing set, then from the catalog', async () => {
  consul.setInstances('users', [{ id: 'users-1', port: 9101 }]);
  const config = path.join(dir, 'mesh.yaml');
  await writeFile(config, `services:\n  users:\n    discovery:\n      consul: { address: "${consul.address}", wait: 5s }\n`);
  const cp = await startControlPlane({ dataDir: path.join(dir, 'cp'), config });
  const proc = registrant();
  await proc.waitForLog((l) => l.msg === 'registered', 40_000);
  await waitFor(async () => (await consulAddresses(cp.url)) === '127.0.0.1:9101,127.0.0.1:9109', { timeoutMs: 30_000, what: 'the registered instance discovered' });

  // Alive for longer than its TTL: the check is kept passing by heartbeats.
  const passes = () => consul.requests.filter((r) => r.method === 'PUT' && r.path === '/v1/agent/check/pass/service:users-9').length;
  await waitFor(() => passes() >= 4, { timeoutMs: 30_000, what: 'four TTL check passes (> 2 s TTL)' });
  expect(consul.statusOf('users', 'users-9')).toBe('passing');

  await proc.stop('SIGKILL');
  await waitFor(() => consul.statusOf('users', 'users-9') === 'critical', { timeoutMs: 30_000, what: 'the check to go critical' });
  await waitFor(async () => (await consulAddresses(cp.url)) === '127.0.0.1:9101', { timeoutMs: 30_000, what: 'the dead instance gone from discovery' });
  await waitFor(() => consul.statusOf('users', 'users-9') === undefined, { timeoutMs: 30_000, what: 'Consul to deregister the critical instance' });
}, 180_000);
