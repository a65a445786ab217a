// `meshlet sidecar --register-etcd / --register-consul`: a sidecar puts its own instance into the
// registry a user already runs (real etcd; Consul through the HTTP double, since no Consul agent can
// be installed here — see test/harness/consul-double.ts), and takes it out first on SIGTERM.
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConsulDouble } from './harness/consul-double.js';
import { startEtcd, type EtcdCluster } from './harness/etcd.js';
import { stopAll } from './harness/process.js';
import { startSidecar } from './harness/sidecar.js';
import { waitFor } from './harness/wait.js';

let etcd: EtcdCluster;
let consul: ConsulDouble;
let client: Etcd3;
beforeAll(async () => {
  etcd = await startEtcd();
  consul = await ConsulDouble.start();
  client = new Etcd3({ hosts: etcd.clientUrls });
});
afterAll(async () => {
  await stopAll();
  client?.close();
  await consul?.close();
  await etcd?.stop();
});

it('registers the instance in etcd and Consul, and removes it on SIGTERM before exiting', async () => {
  const sc = await startSidecar({
    service: 'users',
    config: { services: { users: {} } },
    args: ['--app', '127.0.0.1:9', '--labels', 'version=v2', '--id', 'users-7', '--register-etcd', etcd.clientUrls.join(','), '--register-consul', consul.address, '--register-ttl', '30s'],
  });
  const key = '/meshlet/instances/users/users-7';
  const stored = await waitFor(async () => (await client.get(key).string()) ?? undefined, { timeoutMs: 20_000, what: 'etcd key of the instance' });
  expect(JSON.parse(stored)).toMatchObject({ address: sc.inbound, labels: { version: 'v2' } });
  await waitFor(() => consul.statusOf('users', 'users-7') !== undefined, { timeoutMs: 20_000, what: 'Consul registration' });

  expect(await sc.stop('SIGTERM')).toBe(0);
  // Revoked and deregistered by the sidecar itself, not left to a 30 s lease / TTL check.
  expect(await client.get(key).string()).toBeNull();
  expect(consul.statusOf('users', 'users-7')).toBeUndefined();
});
