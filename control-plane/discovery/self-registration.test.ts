// Against a real etcd (test/harness/etcd.ts) and, since Consul cannot be installed here, a TEST
// DOUBLE of the Consul agent's HTTP API (test/harness/consul-double.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.js';
import { ConsulDouble } from '../../test/harness/consul-double.js';
import { freePorts, startEtcd, type EtcdCluster } from '../../test/harness/etcd.js';
import { waitFor } from '../../test/harness/wait.js';
import { createEtcdClient } from './etcd.js';
import { startSelfRegistration } from './self-registration.js';

let etcd: EtcdCluster;
let consul: ConsulDouble;
beforeAll(async () => {
  [etcd, consul] = await Promise.all([startEtcd(), ConsulDouble.start()]);
}, 30_000);
afterAll(async () => {
  await Promise.all([etcd?.stop(), consul?.close()]);
});

describe('startSelfRegistration', () => {
  it('registers into etcd and Consul, and deregisters from both on stop', async () => {
    const client = createEtcdClient(etcd.clientUrls);
    try {
      const reg = startSelfRegistration({ service: 'users', id: 'users-7', address: '127.0.0.1:9107', labels: { version: 'v2' }, ttlSeconds: 5, etcdEndpoints: etcd.clientUrls, consulAgent: consul.address, log: silentLogger });
      await reg.ready;
      expect(JSON.parse((await client.get('/meshlet/instances/users/users-7').string())!)).toEqual({ address: '127.0.0.1:9107', labels: { version: 'v2' } });
      expect(consul.statusOf('users', 'users-7')).toBe('passing');
      const registered = consul.requests.find((r) => r.path === '/v1/agent/service/register');
      expect(registered).toBeDefined();
      await reg.stop();
      expect(await client.get('/meshlet/instances/users/users-7').string()).toBeNull();
      expect(consul.statusOf('users', 'users-7')).toBeUndefined();
    } finally {
      client.close();
    }
  });

  it('keeps retrying an unreachable registry without failing, and stop() ends the wait', async () => {
    const [dead] = await freePorts(1);
    const warnings: string[] = [];
    const log = { ...silentLogger, info: () => {}, warn: (o: { registry?: string }) => warnings.push(String(o.registry)), child: () => log } as unknown as typeof silentLogger;
    const reg = startSelfRegistration({ service: 'users', id: 'users-8', address: '127.0.0.1:9108', consulAgent: `127.0.0.1:${dead}`, log });
    await waitFor(() => warnings.length >= 2, { timeoutMs: 10_000, what: 'two failed attempts' });
    expect(warnings.every((w) => w === 'consul')).toBe(true);
    await reg.stop();
    await reg.ready;
  });

  it('refuses a bad address or TTL before touching any registry', () => {
    expect(() => startSelfRegistration({ service: 'users', id: 'x', address: 'nope', log: silentLogger })).toThrow(/host:port/);
    expect(() => startSelfRegistration({ service: 'users', id: 'x', address: '127.0.0.1:1', ttlSeconds: 0, log: silentLogger })).toThrow(/TTL/);
  });
});
