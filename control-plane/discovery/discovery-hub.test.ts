import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.js';
import type { MeshConfigInput } from '../../core/config/schema.js';
import { DiscoveryHub } from './discovery-hub.js';
import type { DiscoveryProvider, DiscoverySpec, DiscoveryUpdate } from './provider.js';

/** A provider the test drives by hand (the real ones are tested against real servers). */
class HandProvider implements DiscoveryProvider {
  push: ((u: DiscoveryUpdate) => void) | null = null;
  stopped = false;
  constructor(readonly source: 'dns' | 'consul' | 'etcd', readonly service: string) {}
  start(onUpdate: (u: DiscoveryUpdate) => void) {
    this.push = onUpdate;
  }
  async stop() {
    this.stopped = true;
  }
  send(addresses: string[], stale = false, error?: string) {
    this.push!({ service: this.service, endpoints: addresses.map((address) => ({ address, weight: 1, labels: {}, source: this.source, ...(stale ? { stale } : {}) })), stale, updatedAt: 1, ...(error ? { error } : {}) });
  }
}

function setup() {
  const made: HandProvider[] = [];
  const hub = new DiscoveryHub({
    log: silentLogger,
    createProvider: (service: string, spec: DiscoverySpec) => {
      const out: HandProvider[] = [];
      if (spec.dns) out.push(new HandProvider('dns', service));
      if (spec.consul) out.push(new HandProvider('consul', service));
      made.push(...out);
      return out;
    },
  });
  const changes: string[][] = [];
  hub.onChange((s) => changes.push([...s]));
  return { hub, made, changes };
}

const cfg = (services: MeshConfigInput['services']): MeshConfigInput => ({ services });

describe('DiscoveryHub', () => {
  it('merges the providers of a service (first wins on an address) and reports only real changes', async () => {
    const { hub, made, changes } = setup();
    await hub.update(cfg({ users: { discovery: { dns: { srv: '_http._tcp.users' }, consul: {} } }, orders: {} }));
    expect(made.map((p) => p.source)).toEqual(['dns', 'consul']);
    made[0]!.send(['127.0.0.1:1', '127.0.0.1:2']);
    made[1]!.send(['127.0.0.1:2', '127.0.0.1:3']);
    expect(hub.current().get('users')!.map((e) => `${e.address}/${e.source}`)).toEqual(['127.0.0.1:1/dns', '127.0.0.1:2/dns', '127.0.0.1:3/consul']);
    const n = changes.length;
    made[0]!.send(['127.0.0.1:2', '127.0.0.1:1']); // same set, other order
    expect(changes).toHaveLength(n);
    made[1]!.send(['127.0.0.1:3'], true, 'down');
    expect(changes.at(-1)).toEqual(['users']);
    expect(hub.current().get('users')!.find((e) => e.address === '127.0.0.1:3')!.stale).toBe(true);
    expect(hub.status().get('users')).toEqual([
      { source: 'dns', endpoints: 2, stale: false, updatedAt: 1 },
      { source: 'consul', endpoints: 1, stale: true, error: 'down', updatedAt: 1 },
    ]);
    await hub.stop();
  });

  it('keeps unchanged discovery running, restarts changed, stops removed (reporting it once)', async () => {
    const { hub, made, changes } = setup();
    await hub.update(cfg({ users: { discovery: { dns: { srv: 'a' } } }, orders: { discovery: { dns: { srv: 'b' } } } }));
    made[0]!.send(['127.0.0.1:1']);
    made[1]!.send(['127.0.0.1:2']);
    expect(hub.status().size).toBe(2);
    await hub.update(cfg({ users: { discovery: { dns: { srv: 'a' } } }, orders: { discovery: { dns: { srv: 'c' } } } }));
    expect(made[0]!.stopped).toBe(false);
    expect(made[1]!.stopped).toBe(true);
    expect(made).toHaveLength(3);
    // Until the new provider answers, the old set stays; a late update from the replaced one is ignored.
    expect(hub.current().get('orders')!.map((e) => e.address)).toEqual(['127.0.0.1:2']);
    made[1]!.send(['127.0.0.1:99']);
    expect(hub.current().get('orders')!.map((e) => e.address)).toEqual(['127.0.0.1:2']);
    made[2]!.send(['127.0.0.1:3']);
    expect(hub.current().get('orders')!.map((e) => e.address)).toEqual(['127.0.0.1:3']);
    await hub.update(cfg({ orders: {} }));
    expect(made[0]!.stopped && made[2]!.stopped).toBe(true);
    expect(hub.current().size).toBe(0);
    expect(changes.at(-1)).toEqual(['users', 'orders']);
    expect(hub.status().size).toBe(0);
  });

  it('a provider that has not answered yet counts as stale with an error in status()', async () => {
    const { hub } = setup();
    await hub.update(cfg({ users: { discovery: { consul: {} } } }));
    expect(hub.status().get('users')).toEqual([{ source: 'consul', endpoints: 0, stale: true, error: 'no answer yet', updatedAt: 0 }]);
    await hub.update(undefined);
    expect(hub.status().size).toBe(0);
  });
});
