import { describe, expect, it } from 'vitest';
import type { EndpointRecord } from '../core/snapshot.js';
import { generate } from './generate.js';
import type { InstanceRecord } from './store/store.js';

const config = {
  version: 4,
  config: { services: { users: { endpoints: [{ address: '127.0.0.1:9101' }] }, orders: {} } },
};
const inst = (id: string, service: string, address: string, labels: Record<string, string> = {}): InstanceRecord => ({
  id,
  service,
  address,
  labels,
  adminAddress: '127.0.0.1:15000',
  ttlMs: 10_000,
  registeredAt: '2026-01-01T00:00:00.000Z',
  lastHeartbeatAt: '2026-01-01T00:00:00.000Z',
});

describe('generate', () => {
  it('lists registered instances under their service, beside discovered ones, static addresses winning', () => {
    const discovered = new Map<string, EndpointRecord[]>([['users', [{ address: '127.0.0.1:9300', weight: 5, labels: {}, source: 'dns' }, { address: '127.0.0.1:9101', weight: 1, labels: {}, source: 'dns' }]]]);
    const s = generate({ config, instances: [inst('u2', 'users', '127.0.0.1:9202', { version: 'v2' }), inst('u1', 'users', '127.0.0.1:9201')], discovered });
    expect(s.version).toBe('4');
    expect(s.endpoints.users).toEqual([
      { address: '127.0.0.1:9201', weight: 1, labels: {}, source: 'registered' },
      { address: '127.0.0.1:9202', weight: 1, labels: { version: 'v2' }, source: 'registered' },
      { address: '127.0.0.1:9300', weight: 5, labels: {}, source: 'dns' },
    ]);
    expect(s.endpoints.orders).toBeUndefined();
  });

  it('gives the same hash for the same content in any order, and another hash when an instance goes', () => {
    const a = inst('a', 'orders', '127.0.0.1:1');
    const b = inst('b', 'orders', '127.0.0.1:2');
    const h1 = generate({ config, instances: [a, b], discovered: new Map() }).hash;
    const h2 = generate({ config, instances: [b, a], discovered: new Map() }).hash;
    const h3 = generate({ config, instances: [a], discovered: new Map() }).hash;
    expect(h1).toBe(h2);
    expect(h3).not.toBe(h1);
  });

  it('leaves out instances of services the config does not name', () => {
    const s = generate({ config, instances: [inst('x', 'ghost', '127.0.0.1:5')], discovered: new Map() });
    expect(Object.keys(s.endpoints)).toEqual([]);
  });
});
